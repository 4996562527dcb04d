"""A FAKE Polymarket (CLOB + relayer on one loopback port) for the gateway's unit tests: just enough of the
wire (LIVE-2026 §3-§6) for the unmodified SDK to create a client, read market rules, sign, post and follow
trades, with knobs for what a test wants the server to answer. The real local CLOB is tested in
tests/integration; this one only lets the gateway's own logic run without a node."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

CONDITION = "0x" + "c1" * 32
TOKEN = "7132" + "1" * 70


class FakePolymarket:
    """Serves on 127.0.0.1:<port>; change `market`, `book`, `order_answers`, `trades` between calls."""

    def __init__(self) -> None:
        self.market = {"t": [{"t": TOKEN, "o": "Yes"}], "mts": "0.01", "nr": False, "fd": {"r": 0.03, "e": 1}}
        self.book = {"asks": [{"price": "0.55", "size": "1000"}, {"price": "0.5", "size": "1000"}],
                     "bids": [{"price": "0.45", "size": "1000"}], "min_order_size": "5", "tick_size": "0.01",
                     "neg_risk": False}
        self.order_answers: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.trades: dict[str, dict[str, Any]] = {}
        self.posted: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def trade_row(self, tid: str, status: str, tx: str | None) -> dict[str, Any]:
        """A trade row with every field the SDK requires (§5.6)."""
        return {"id": tid, "market": CONDITION, "asset_id": TOKEN, "owner": "k", "maker_address": "0x" + "11" * 20,
                "taker_order_id": "0x" + "22" * 32, "side": "BUY", "trader_side": "TAKER", "price": "0.5",
                "size": "10", "fee_rate_bps": "0", "outcome": "Yes", "status": status, "bucket_index": 0,
                "transaction_hash": tx, "maker_orders": [], "match_time": "1796148551",
                "last_update": "1796148551"}

    def _handler(self):
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                fake.requests.append(f"GET {u.path}")
                if u.path == "/deployed":
                    return self._send(200, {"deployed": True})
                if u.path == "/auth/derive-api-key" or u.path == "/auth/api-keys":
                    return self._send(200, {"apiKey": "k-1", "secret": "c2VjcmV0", "passphrase": "p",
                                            "apiKeys": ["k-1"]})
                if u.path.startswith("/markets-by-token/"):
                    return self._send(200, {"condition_id": CONDITION})
                if u.path.startswith("/clob-markets/"):
                    return self._send(200, fake.market)
                if u.path == "/book":
                    return self._send(200, {"market": CONDITION, "asset_id": q.get("token_id"), "hash": "h",
                                            "timestamp": "1796148551000", **fake.book})
                if u.path == "/data/trades":
                    rows = [fake.trade_row(q["id"], **fake.trades[q["id"]])] if q.get("id") in fake.trades else []
                    return self._send(200, {"data": rows, "next_cursor": "LTE="})
                if u.path.startswith("/data/order/"):
                    return self._send(404, {"error": "order not found"})
                if u.path == "/ok":
                    return self._send(200, "OK")
                return self._send(404, {"error": f"no route {u.path}"})

            def do_POST(self):  # noqa: N802
                u = urlparse(self.path)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                fake.requests.append(f"POST {u.path}")
                if u.path == "/auth/api-key":
                    return self._send(200, {"apiKey": "k-1", "secret": "c2VjcmV0", "passphrase": "p"})
                if u.path == "/order":
                    fake.posted.append(body)
                    code, ans, headers = fake.order_answers.pop(0) if fake.order_answers else (200, {}, {})
                    return self._send(code, ans, headers)
                return self._send(404, {"error": f"no route {u.path}"})

        return H
