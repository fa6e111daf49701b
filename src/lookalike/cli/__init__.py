"""Command-line front door (Typer)."""
