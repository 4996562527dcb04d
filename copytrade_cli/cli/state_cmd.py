"""`copytrade state info`."""
from __future__ import annotations

import typer

from .common import JsonOpt, get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)


@app.command("info")
@handle_errors
def info(ctx: typer.Context, json_: JsonOpt = False):
    """Show the state file's path, schema version and row counts.

    Example: copytrade state info
    """
    c = get_ctx(ctx, json_)
    data = c.state.info()

    def human():
        c.out.line(f"State file: {data['path']}")
        c.out.line(f"Schema version: {data['schema_version']} (latest {data['latest_version']}), "
                   f"journal {data['journal_mode']}")
        c.out.table(None, ["table", "rows"], [[t, n] for t, n in data["tables"].items()])

    c.out.result(data, human)
