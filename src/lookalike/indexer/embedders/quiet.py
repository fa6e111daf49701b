"""Third-party libraries silenced while they do one job for us (a download, an export): their failure reaches the
user once, as lookalike's own one-line error, not as their log records."""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_loggers(*names: str, output: bool = False) -> Iterator[None]:
    """Raise the named loggers (``""``: the root) to CRITICAL for the block, then restore their levels; with
    ``output``, also drop what is printed on stdout and every warning.

    Loggers, warning filters and ``sys.stdout`` belong to the process: only the main thread changes them (on a
    service's request thread that would silence, or swallow the output of, the requests beside it); on other
    threads the block runs unsilenced.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with contextlib.ExitStack() as stack:
            if output:
                stack.enter_context(warnings.catch_warnings())
                warnings.simplefilter("ignore")
                stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
