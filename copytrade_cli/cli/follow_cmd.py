"""`copytrade follow ...`."""
from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def seed(ctx: typer.Context):
    """Write the seed's test follow config."""
    from .common import not_built, handle_errors
    handle_errors(lambda: not_built("seed", 5))()
