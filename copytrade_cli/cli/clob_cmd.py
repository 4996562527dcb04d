"""`copytrade clob serve`."""
from __future__ import annotations

from typing import Annotated

import typer

from .common import get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)


@app.command("serve")
@handle_errors
def serve(ctx: typer.Context,
          port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8081,
          host: Annotated[str, typer.Option("--host", help="Interface (loopback by default).")] = "127.0.0.1"):
    """Serve the local CLOB (+ activity websocket at /ws and Data API) for the running fork, in the foreground.

    Example: copytrade clob serve --port 8081
    """
    from ..localworld.service import serve_for_node

    c = get_ctx(ctx)
    c.out.line(f"Local CLOB on http://{host}:{port} (activity feed ws://{host}:{port}/ws)")
    serve_for_node(c.settings, c.state, host=host, port=port)
