"""The local relayer over HTTP (aiohttp): the routes the unmodified polymarket-client 0.14.0 calls (LIVE-2026 §6.2-6.3).

| Route | Answer |
|---|---|
| GET /deployed?address=W&type=WALLET | `{"deployed": bool}` (code at W) |
| GET /v1/account/transactions/params?address=EOA&type=WALLET | `{"address": W, "nonce": "<on-chain nonce of W>"}` |
| POST /submit (WALLET-CREATE, WALLET) | `{"transactionID", "transactionHash", "state"}`; refusals 400/401/429 `{"error"}` |
| GET /v1/account/transactions/{id} | `{"transaction_id", "transaction_hash", "state", "error_msg", ...}` |
| POST /v1/session-signers/authorizations, /revocations | `{"status", "transactionId", ...}` |
| GET /v1/session-signers?wallet=W | local extension: the registered signers (for the local CLOB's /v1/user/session-signers) |
| GET/POST /local/faults, GET /local/stats | local only: inject 429 / wallet-busy for the next submits; counters |
| GET /ok | health |

`RelayerServerThread` serves it from a background thread (tests); `serve` in the foreground;
`python -m copytrade_cli.localworld.relayer_server --port P` serves the relayer of the fork recorded in state
(`fork up` starts it that way).
"""
from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from aiohttp import web

from .app_thread import AppThread
from .relayer import LocalRelayer, RelayerOptions
from .relayer_auth import RelayerRejection
from .relayer_sessions import session_operation

log = logging.getLogger(__name__)

RELAYER_KEY = web.AppKey("relayer", LocalRelayer)
PROCESS_MODULE = "copytrade_cli.localworld.relayer_server"  # `python -m` target; also what stop_pid expects


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(data, separators=(",", ":")), status=status,
                        content_type="application/json", headers=headers)


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except RelayerRejection as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return _json({"error": exc.message}, exc.status, headers)
    except web.HTTPException as exc:
        return _json({"error": exc.reason or "error"}, exc.status)
    except Exception:  # noqa: BLE001 — one line to the client, the traceback to the log
        log.exception("local relayer: %s %s failed", request.method, request.path)
        return _json({"error": "internal error"}, 500)


async def _body(request: web.Request) -> tuple[Any, str]:
    raw = await request.text()
    try:
        return json.loads(raw), raw
    except ValueError:
        raise RelayerRejection("invalid request body: not JSON") from None


def routes(relayer: LocalRelayer) -> list[web.RouteDef]:
    """The relayer's HTTP routes over LocalRelayer's public methods."""

    async def ok(_request):
        return _json({"ok": True, "factory": relayer.factory, "relayer": relayer.gas_address})

    async def deployed(request):
        return _json({"deployed": await relayer.deployed(request.query.get("address", ""))})

    async def params(request):
        q = request.query
        return _json(await relayer.execute_params(q.get("address", ""), q.get("type", "WALLET")))

    async def submit(request):
        body, raw = await _body(request)
        return _json(await relayer.submit(body, request.headers, method=request.method, path=request.path,
                                          raw_body=raw))

    async def transaction(request):
        return _json(relayer.transaction(request.match_info["tx_id"]))

    async def authorize(request):
        body, raw = await _body(request)
        return _json(await session_operation(relayer, "authorize", body, request.headers, path=request.path,
                                             raw_body=raw))

    async def revoke(request):
        body, raw = await _body(request)
        return _json(await session_operation(relayer, "revoke", body, request.headers, path=request.path,
                                             raw_body=raw))

    async def signers(request):
        wallet = request.query.get("wallet", "")
        from eth_utils import is_address

        if not is_address(wallet):
            raise RelayerRejection(f"invalid wallet: {wallet!r}")
        return _json(relayer.session_signers(wallet))

    # Not Polymarket routes: this local server's test/operator switches and counters (loopback only).
    async def get_faults(_request):
        return _json(relayer.faults())

    async def set_faults(request):
        body, _raw = await _body(request)
        return _json(relayer.configure_faults(body))

    async def stats(_request):
        return _json(relayer.stats())

    return [
        web.get("/ok", ok),
        web.get("/local/faults", get_faults),
        web.post("/local/faults", set_faults),
        web.get("/local/stats", stats),
        web.get("/deployed", deployed),
        web.get("/v1/account/transactions/params", params),
        web.post("/submit", submit),
        web.get("/v1/account/transactions/{tx_id}", transaction),
        web.post("/v1/session-signers/authorizations", authorize),
        web.post("/v1/session-signers/revocations", revoke),
        web.get("/v1/session-signers", signers),
    ]


def build_app(world: Any, rpc_url: str, *, gas_key: str, options: RelayerOptions | None = None) -> web.Application:
    """The local relayer for a planted world as an aiohttp application (node connection on start-up)."""
    relayer = LocalRelayer.for_world(world, rpc_url, gas_key=gas_key, options=options)
    app = web.Application(middlewares=[_errors], client_max_size=1024 * 1024)
    app[RELAYER_KEY] = relayer
    app.add_routes(routes(relayer))

    async def _startup(_app):
        await relayer.start()

    async def _cleanup(_app):
        await relayer.stop()

    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app


class RelayerServerThread(AppThread):
    """The local relayer on its own event loop in a background thread (tests, embedding)."""

    def __init__(self, world: Any, rpc_url: str, *, gas_key: str, host: str = "127.0.0.1", port: int = 0,
                 options: RelayerOptions | None = None):
        app = build_app(world, rpc_url, gas_key=gas_key, options=options)
        self.relayer: LocalRelayer = app[RELAYER_KEY]
        super().__init__(app, host=host, port=port, name="local-relayer", label="local relayer")


def serve(world: Any, rpc_url: str, *, gas_key: str, host: str = "127.0.0.1", port: int = 8082,
          options: RelayerOptions | None = None) -> None:
    """Serve the local relayer until interrupted (blocking; SIGINT/SIGTERM stop it cleanly)."""
    app = build_app(world, rpc_url, gas_key=gas_key, options=options)
    log.info("local relayer listening on http://%s:%d", host, port)
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True)


def serve_for_node(port: int, host: str = "127.0.0.1") -> None:
    """Blocking: the local relayer of the fork recorded in this COPYTRADE_HOME's state."""
    from ..errors import NodeError
    from ..polymarket.world import World
    from ..settings import Settings
    from ..state import open_state
    from .wallets_plant import RELAYER_KEY as GAS_KEY

    settings = Settings()
    rec = open_state(settings).get_node()
    if rec is None or not rec.world_json:
        raise NodeError("no local fork with Polymarket planted is recorded: run `copytrade fork up` first")
    serve(World.model_validate_json(rec.world_json), rec.rpc_url, gas_key=GAS_KEY, host=host, port=port)


def spawn(settings: Any, port: int | None = None, timeout: float = 20.0) -> tuple[str, int]:
    """Start the relayer of this home's recorded fork in the background; return (url, pid) once it answers."""
    from ..chain import node as nodes
    from .app_thread import spawn_server

    port = port or nodes.free_port()
    return spawn_server(settings, [PROCESS_MODULE, "--port", str(port)], what="local relayer", port=port,
                        stop_marker=PROCESS_MODULE, timeout=timeout)


def main(argv: list[str] | None = None) -> None:
    """`python -m copytrade_cli.localworld.relayer_server --port P`: what `fork up` starts."""
    parser = argparse.ArgumentParser(description="Serve the local relayer of the recorded fork.")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve_for_node(args.port, args.host)


if __name__ == "__main__":
    main()
