"""``lookalike`` as the CLI runs it, committing after every file, and SIGKILLing itself just before its
``LOOKALIKE_TEST_KILL_AT``-th commit when that is set: a driver killed between two commits, at a point chosen by the
test (a kill from outside lands between commits only by luck on a corpus this small, whose results come in a burst).

    python -m tests.indexer.killed_driver --home H index ROOT --ray ADDRESS
"""

from __future__ import annotations

import os
import signal
import sys

from lookalike.cli.main import app
from lookalike.indexer import pipeline


def _kill_before_commit(number: int) -> None:
    write = pipeline.Indexer._write_embedded
    commits = 0

    def write_or_die(self, items, engine) -> None:
        nonlocal commits
        commits += 1
        if commits == number:
            os.kill(os.getpid(), signal.SIGKILL)
        write(self, items, engine)

    pipeline.Indexer._write_embedded = write_or_die  # type: ignore[method-assign]


if __name__ == "__main__":
    pipeline.WRITE_EVERY_FILES = 1
    if kill_at := int(os.environ.get("LOOKALIKE_TEST_KILL_AT", "0")):
        _kill_before_commit(kill_at)
    sys.argv[0] = "lookalike"
    app()
