"""What every command shares: the consoles, option range checks, and opening the workspace."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from lookalike.cli.render import shown
from lookalike.errors import LookalikeError
from lookalike.workspace import Workspace

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def within(low: float, high: float, low_open: bool = False) -> Callable[[float | None], float | None]:
    """A Typer callback refusing numbers outside [low, high] (or (low, high] with ``low_open``), NaN and
    infinities, as a usage error (exit code 2)."""

    def check(value: float | None) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
            raise typer.BadParameter(f"{value} is not in {bound}")
        return value

    return check


@contextmanager
def workspace(ctx: typer.Context, auto_upgrade: bool = True, create: bool = False) -> Iterator[Workspace]:
    """Open the workspace (``create``: make the library if there is none, for ``index``); domain errors become a
    one-line message and exit code 1."""
    try:
        with Workspace(ctx.obj, auto_upgrade=auto_upgrade, create=create) as ws:
            yield ws
    except LookalikeError as e:
        err.print(f"[red]error:[/red] {shown(e)}")
        raise typer.Exit(1) from e
