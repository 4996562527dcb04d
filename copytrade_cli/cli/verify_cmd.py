"""`copytrade verify readiness`."""
from __future__ import annotations

import typer

from .common import get_ctx, handle_errors, not_built

app = typer.Typer(no_args_is_help=True)


@app.command("readiness")
@handle_errors
def readiness(ctx: typer.Context):
    """Go-live readiness checks (issue #6)."""
    not_built("verify readiness", 6)
