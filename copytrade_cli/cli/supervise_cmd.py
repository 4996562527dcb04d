"""`copytrade supervise`."""
from __future__ import annotations

import typer


def supervise(ctx: typer.Context):
    """Run the supervisor."""
    from .common import handle_errors, not_built
    handle_errors(lambda: not_built("supervise", 5))()
