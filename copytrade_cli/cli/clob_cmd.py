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
          host: Annotated[str, typer.Option("--host", help="Interface (loopback by default).")] = "127.0.0.1",
          grandfathered: Annotated[list[str] | None, typer.Option(
              "--grandfathered", help="A maker allowed to post signature types 0/1/2 (repeatable; live allows only "
                                      "deposit wallets, type 3).")] = None,
          cancel_only: Annotated[bool, typer.Option("--cancel-only", help="Start in cancel-only mode (503 on new "
                                                                          "orders).")] = False):
    """Serve the local CLOB (+ activity websocket at /ws and Data API) for the running fork, in the foreground.

    Example: copytrade clob serve --port 8081 --grandfathered 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
    """
    from ..errors import UsageError
    from ..localworld.service import serve_for_node
    from eth_utils import is_address

    bad = [a for a in grandfathered or [] if not is_address(a)]
    if bad:
        raise UsageError(f"--grandfathered needs addresses; not one: {bad[0]}")
    c = get_ctx(ctx)
    c.out.line(f"Local CLOB on http://{host}:{port} (activity feed ws://{host}:{port}/ws)")
    serve_for_node(c.settings, c.state, host=host, port=port, grandfathered=tuple(grandfathered or ()),
                   cancel_only=cancel_only)
