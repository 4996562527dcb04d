"""`copytrade config show|check`."""
from __future__ import annotations

import typer

from .common import JsonOpt, get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)


@app.command("show")
@handle_errors
def show(ctx: typer.Context, json_: JsonOpt = False):
    """Print every setting by its environment name, secrets masked.

    Example: copytrade config show --json
    """
    c = get_ctx(ctx, json_)
    data = c.settings.public_dict()
    c.out.result(data, lambda: c.out.table("copytrade configuration", ["variable", "value"],
                                           [[k, v] for k, v in data.items()]))


@app.command("check")
@handle_errors
def check(ctx: typer.Context, json_: JsonOpt = False):
    """Validate the configuration; exit 2 with one line naming the bad variable.

    Example: SUPERVISOR_QUEUE_MAX_SIZE=abc copytrade config check
    """
    c = get_ctx(ctx, json_)
    s = c.settings
    c.out.result({"ok": True, "network": s.network, "state_file": str(s.state_path)},
                 lambda: c.out.line(f"Configuration OK (network {s.network}, state {s.state_path})"))
