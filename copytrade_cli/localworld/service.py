"""`copytrade clob serve`: the local CLOB + activity feed + Data API for the fork recorded in state (one aiohttp app)."""
from __future__ import annotations

from ..errors import NodeError
from ..settings import Settings
from ..state import State


def serve_for_node(settings: Settings, state: State, *, host: str = "127.0.0.1", port: int = 8081,
                   **clob_options) -> None:
    """Blocking: the local CLOB for the recorded node, with the feed mounted beside it (`clob_options`: ClobOptions
    fields, e.g. grandfathered=(addr,), cancel_only=True)."""
    from .clob_server import serve
    from .world import DEV_KEYS, EXCHANGE_OPERATOR, MARKET_MAKER, World

    rec = state.get_node()
    if rec is None or not rec.world_json:
        raise NodeError("no local fork with Polymarket planted is recorded: run `copytrade fork up` first")
    world = World.from_json(rec.world_json)
    serve(world, rec.rpc_url, host=host, port=port, operator_key=DEV_KEYS[EXCHANGE_OPERATOR],
          market_maker_key=DEV_KEYS[MARKET_MAKER], feed=True, **clob_options)
