"""`copytrade demo`."""
from __future__ import annotations

import typer


def demo(ctx: typer.Context):
    """The whole runbook in one command."""
    from .common import handle_errors, not_built
    handle_errors(lambda: not_built("demo", 5))()
