"""`copytrade migrate ...`."""
from __future__ import annotations

import typer

from .common import handle_errors, not_built

app = typer.Typer(no_args_is_help=True)


@app.command("plan")
@handle_errors
def plan(ctx: typer.Context):
    """What a migration to new contracts would do (issue #6)."""
    not_built("migrate plan", 6)
