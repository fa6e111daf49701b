"""What the interpreter start-up of every ``lookalike`` command costs: wall time of importing its libraries.

Each import runs in a fresh interpreter (``python -c "import X"``), ``--repeats`` times; the table gives the best
run less the best run of a bare interpreter (``python -c pass``). An unchanged re-index spends most of its wall
clock here (see ``throughput --only reindex``).

    python -m benchmarks.startup [--repeats 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks.machine import describe, load_average

IMPORTS = (
    ("numpy", "import numpy"),
    ("SQLAlchemy (engine and ORM)", "import sqlalchemy, sqlalchemy.orm"),
    ("typer + rich", "import typer, rich"),
    ("the CLI module (`lookalike.cli.main`)", "import lookalike.cli.main"),
)


def best_seconds(code: str, repeats: int) -> float:
    """The fastest of ``repeats`` runs of ``python -c code``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Time each import and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(describe(), flush=True)
    bare = best_seconds("pass", args.repeats)
    print(f"bare interpreter: {1000 * bare:.0f} ms (best of {args.repeats})\n")
    print("| import | ms over a bare interpreter (best of runs) |\n|---|---|")
    for label, code in IMPORTS:
        print(f"| {label} | {1000 * (best_seconds(code, args.repeats) - bare):.0f} |", flush=True)
    print(f"\n{load_average()} at end")


if __name__ == "__main__":
    main()
