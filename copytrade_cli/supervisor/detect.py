"""Detection channels. Each runs in its own thread, turns what it sees into `LeaderFill`s with the one
canonical key, and hands them to the intake it was built with; dedup happens there, per fill, not per tx.

- `MempoolChannel`: pending transactions (eth_newPendingTransactionFilter), decoded before they are mined; only
  from an exchange operator (`OperatorCache`) and with verified order signatures; each tx it emitted fills for is
  watched for a ghost fill (ghosts.py).
- `LogChannel`: mined `OrderFilled` (V1/V2) logs, resuming from the last block processed (persisted).
- `ActivityChannel`: Polymarket's activity websocket (client-side leader filter), reconnect with backoff.
- `DataApiChannel`: Data API `/activity` polling with a persisted per-leader cursor.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import typing
from typing import Any, Callable, Iterable

from ..chain.rpc import BatchRefused, Endpoints, JsonRpc
from ..polymarket import fills as F

log = logging.getLogger("copytrade.detect")
LeadersFn = Callable[[], set[str]]


class FillSink(typing.Protocol):
    """What a channel hands fills to (the supervisor's intake)."""

    def on_fill(self, fill: F.LeaderFill) -> None:
        """One fill."""

    def on_fills(self, fills: list[F.LeaderFill]) -> None:
        """The fills of one poll, committed together."""


class Channel(threading.Thread):
    """A detection channel thread with a stop event, an error counter and a backoff. It hands what it finds to
    the intake it was built with (`on_fill` for one fill, `on_fills` for one poll's fills: one state commit)."""

    name_ = "channel"

    def __init__(self, intake: "FillSink", leaders: LeadersFn, stop: threading.Event):
        super().__init__(name=f"detect-{self.name_}", daemon=True)
        self.intake, self.leaders, self.stop_event = intake, leaders, stop
        self.seen = 0
        self.errors = 0
        self.connected = False

    def emit_many(self, fills: list[F.LeaderFill]) -> None:
        """Everything one poll found, handed over at once (the intake commits them together)."""
        if len(fills) < 2:
            for f in fills:
                self.emit(f)
            return
        self.seen += len(fills)
        try:
            self.intake.on_fills(fills)
        except Exception:  # noqa: BLE001 — a bad batch must never kill a channel
            log.exception("processing %d fills failed", len(fills))

    def emit(self, fill: F.LeaderFill) -> None:
        """One fill, handed over as a plain call: the channel's cursor moves only after it is recorded."""
        self.seen += 1
        try:
            self.intake.on_fill(fill)
        except Exception:  # noqa: BLE001 — a bad fill must never kill a channel
            log.exception("processing fill %s failed", fill.key)

    def run(self) -> None:
        backoff = 0.2
        while not self.stop_event.is_set():
            try:
                self.loop()
                backoff = 0.2
            except Exception as exc:  # noqa: BLE001 — reconnect with backoff
                self.errors += 1
                self.connected = False
                log.warning("%s channel error (%s); retrying in %.1fs", self.name_, str(exc)[:160], backoff)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def loop(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class _Rpc(JsonRpc):
    """Detection's JSON-RPC client (chain.rpc over keep-alive http.client: cheaper than web3 on a 20 Hz poll).
    Given several endpoints (COPY_TRADING_RPC_URLS), the one failover policy without retry: a connection error
    moves to the next endpoint and is raised, so the channel restarts its loop (filters, cursors) there."""

    def __init__(self, url: str | list[str]):
        super().__init__(Endpoints(url, retry=False, user="detection"), timeout=10)

    def batch(self, calls: list[tuple[str, list]]) -> list[Any]:
        """Results in order; an entry that failed is None (a batch refused as a whole raises)."""
        got = super().batch(calls)
        if got and isinstance(got[0], BatchRefused):
            raise got[0]
        return [None if isinstance(g, Exception) else g for g in got]


# Operator answers are cached per (exchange, sender). NOTE: a negative answer only costs latency (the mined fill
# still arrives through the log channel), but it makes a newly added operator's pending fills invisible for up to
# NEGATIVE_TTL_S; a positive answer lets a just-removed operator's pending txs through for up to POSITIVE_TTL_S,
# and those revert on chain (NotOperator) and are caught as ghost fills.
OPERATOR_POSITIVE_TTL_S = 60.0
OPERATOR_NEGATIVE_TTL_S = 10.0
_IS_OPERATOR = "0x6d70f7ae"  # isOperator(address)
_IS_VALID_SIGNATURE = "0x1626ba7e"  # isValidSignature(bytes32,bytes) (ERC-1271); also its magic return value


class OperatorCache:
    """`isOperator(sender)` on each exchange, read from the chain in one batch per poll and cached with a TTL
    (positive and negative answers apart); an exchange that cannot answer counts as "not an operator"."""

    def __init__(self, rpc, *, positive_ttl_s: float = OPERATOR_POSITIVE_TTL_S,
                 negative_ttl_s: float = OPERATOR_NEGATIVE_TTL_S, max_entries: int = 10_000):
        self.rpc, self.positive_ttl_s, self.negative_ttl_s = rpc, positive_ttl_s, negative_ttl_s
        self.max_entries = max_entries
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}  # (exchange, sender) -> (answer, until)
        self.reads = 0

    def resolve(self, pairs) -> dict[tuple[str, str], bool]:
        """The answer for each (exchange, sender) pair (lowercase), reading the stale or unknown ones at once."""
        now = time.monotonic()
        out: dict[tuple[str, str], bool] = {}
        ask: list[tuple[str, str]] = []
        for p in dict.fromkeys(pairs):
            hit = self._cache.get(p)
            if hit is not None and hit[1] > now:
                out[p] = hit[0]
            else:
                ask.append(p)
        if ask:
            self.reads += len(ask)
            got = self.rpc.batch([("eth_call", [{"to": ex, "data": _IS_OPERATOR + sender[2:].rjust(64, "0")},
                                               "latest"]) for ex, sender in ask])
            if len(self._cache) + len(ask) > self.max_entries:
                self._cache.clear()  # bounded: a flood of one-off senders costs re-reads, never memory
            for p, r in zip(ask, got):
                yes = isinstance(r, str) and len(r) >= 66 and int(r[2:66], 16) == 1
                self._cache[p] = (yes, now + (self.positive_ttl_s if yes else self.negative_ttl_s))
                out[p] = yes
        return out


class MempoolChannel(Channel):
    """Pending exchange fills naming a leader, before they are mined — only from a transaction an operator of
    that exchange sent (read from the chain, cached) and only orders whose signatures verify (EIP-712 for types
    0-2, ERC-1271 `isValidSignature` on the wallet for type 3). Every tx it emitted fills for is handed to the
    ghost watcher (if any), which reports the ones that revert or never mine."""

    name_ = "mempool"

    def __init__(self, intake, leaders, stop, *, rpc_url: str, exchanges: Iterable[str], ctf: str,
                 chain_id: int = 137, poll_s: float = 0.02, verify: bool = True, ghosts=None,
                 operators: OperatorCache | None = None):
        super().__init__(intake, leaders, stop)
        self.rpc = _Rpc(rpc_url)
        self.exchanges, self.ctf, self.chain_id, self.poll_s = list(exchanges), ctf, chain_id, poll_s
        self._exchange_set = {e.lower() for e in self.exchanges}
        # NOTE: `verify=False` exists for the latency benchmark only (what the checks cost); nothing else sets it.
        self.verify = verify
        self.operators = operators or OperatorCache(self.rpc)
        self.ghosts = ghosts
        self.refused_sender = 0  # pending exchange calls from a non-operator (ignored)
        self.refused_signature = 0  # leader orders in operator txs whose signature did not verify (ignored)

    def start(self) -> None:
        super().start()
        if self.ghosts is not None and not self.ghosts.is_alive():
            self.ghosts.start()

    def loop(self) -> None:
        fid = self.rpc.call("eth_newPendingTransactionFilter")
        self.connected = True
        while not self.stop_event.is_set():
            hashes = self.rpc.call("eth_getFilterChanges", [fid]) or []
            if hashes:
                txs = self.rpc.batch([("eth_getTransactionByHash", [h]) for h in hashes])
                self.emit_many(self.fills_of(txs, self.leaders()))
            else:
                self.stop_event.wait(self.poll_s)

    def fills_of(self, txs: list[Any], leaders: set[str]) -> list[F.LeaderFill]:
        """The believable leader fills of one poll's pending transactions (senders checked, then signatures)."""
        if not leaders:
            return []
        calls = [tx for tx in txs if tx and (tx.get("to") or "").lower() in self._exchange_set]
        if self.verify and calls:
            ok = self.operators.resolve(((tx["to"].lower(), (tx.get("from") or "").lower()) for tx in calls))
            allowed = []
            for tx in calls:
                if ok.get((tx["to"].lower(), (tx.get("from") or "").lower())):
                    allowed.append(tx)
                else:
                    self.refused_sender += 1
                    log.info("pending exchange call %s from %s, not an operator of %s: ignored", tx.get("hash"),
                             tx.get("from"), tx.get("to"))
            calls = allowed
        batch: list[F.LeaderFill] = []
        for tx in calls:
            refused: list[F.LeaderFill] = []
            try:
                found = F.decode_pending_tx(tx, leaders, exchanges=self.exchanges, ctf=self.ctf,
                                            chain_id=self.chain_id, verify_signatures=self.verify,
                                            erc1271=self._erc1271, refused=refused)
            except F.DecodeError as exc:
                log.info("undecodable pending tx %s: %s", tx.get("hash"), exc)
                continue
            if refused:
                self.refused_signature += len(refused)
                log.info("pending tx %s from an operator names a leader, but %d order signature(s) do not verify: "
                         "ignored", tx.get("hash"), len(refused))
            # NOTE: CTF transfers are not decoded here at all: they carry no price, so the fill's log follows.
            priced = [f for f in found if f.usd_micro is not None]
            if priced and self.ghosts is not None:
                self.ghosts.watch(priced[0].tx_hash)
            batch.extend(priced)
        return batch

    def _erc1271(self, wallet: str, order_hash: bytes, signature: bytes) -> bool:
        """ERC-1271: the deposit wallet's `isValidSignature(orderHash, sig)` returns the magic value."""
        from eth_abi import encode

        data = _IS_VALID_SIGNATURE + encode(["bytes32", "bytes"], [order_hash, signature]).hex()
        try:
            r = self.rpc.call("eth_call", [{"to": wallet, "data": data}, "latest"])
        except Exception:  # noqa: BLE001 — a wallet (or node) that cannot answer has not signed
            return False
        return isinstance(r, str) and len(r) >= 66 and r[2:10].lower() == _IS_VALID_SIGNATURE[2:]


class LogChannel(Channel):
    """Mined exchange `OrderFilled` logs, from the last processed block (persisted cursor).

    With a websocket URL it subscribes to `newHeads` and fetches each new block's logs at once; when the
    subscription fails or goes quiet it falls back to polling `eth_blockNumber` (and retries the socket
    on the next reconnect). Either way the range read is cursor-based, so nothing is skipped or re-read."""

    name_ = "logs"

    def __init__(self, intake, leaders, stop, *, rpc_url: str, exchanges: Iterable[str], state,
                 cursor_name: str = "logs:last_block", poll_s: float = 0.2, world=None, ws_url: str | None = None):
        super().__init__(intake, leaders, stop)
        self.rpc = _Rpc(rpc_url)
        self.exchanges, self.state, self.cursor_name, self.poll_s = list(exchanges), state, cursor_name, poll_s
        self.world = world
        self.ws_url = ws_url
        self.mode = "polling"
        self._frm: int | None = None

    def loop(self) -> None:
        head = int(self.rpc.call("eth_blockNumber"), 16)
        last = self.state.get_cursor(self.cursor_name)
        self._frm = int(last) + 1 if last is not None else head
        self.connected = True
        if self.ws_url:
            try:
                self._follow_heads()
            except Exception as exc:  # noqa: BLE001 — fall back to polling until the next reconnect
                log.info("newHeads subscription unavailable (%s); polling", str(exc)[:120])
        self.mode = "polling"
        while not self.stop_event.is_set():
            if not self._catch_up():
                self.stop_event.wait(self.poll_s)

    def _follow_heads(self) -> None:
        from websockets.sync.client import connect

        with connect(self.ws_url, open_timeout=5, ping_interval=None) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
            ack = json.loads(ws.recv(timeout=5))
            if "error" in ack:
                raise RuntimeError(ack["error"].get("message", "subscribe refused"))
            self.mode = "subscription"
            self._catch_up()
            quiet = 0.0
            while not self.stop_event.is_set():
                try:
                    ws.recv(timeout=1.0)
                    quiet = 0.0
                except TimeoutError:
                    quiet += 1.0
                    if quiet >= 30:
                        raise RuntimeError("no new head for 30 s")
                self._catch_up()

    def _catch_up(self) -> bool:
        """Read logs from the cursor to the head; True if there was anything to read."""
        head = int(self.rpc.call("eth_blockNumber"), 16)
        if head < self._frm:
            return False
        while self._frm <= head and not self.stop_event.is_set():
            to = min(head, self._frm + 1999)
            logs = self.rpc.call("eth_getLogs", [{"fromBlock": hex(self._frm), "toBlock": hex(to),
                                                  "address": self.exchanges}]) or []
            leaders = self.leaders()
            batch: list[F.LeaderFill] = []
            for lg in logs:
                try:
                    found = F.decode_log(lg, leaders)
                except F.DecodeError as exc:
                    log.info("undecodable log in %s: %s", lg.get("transactionHash"), exc)
                    continue
                batch.extend(_with_condition(f, self.world) for f in found)
            self.emit_many(batch)
            self.state.set_cursor(self.cursor_name, str(to))
            self._frm = to + 1
        return True


def _with_condition(f: F.LeaderFill, world) -> F.LeaderFill:
    if f.condition_id or world is None:
        return f
    hit = world.market_for_token(f.token_id)
    if not hit:
        return f
    import dataclasses

    return dataclasses.replace(f, condition_id=hit[0].condition_id)


class ActivityChannel(Channel):
    """Polymarket's activity websocket; the server cannot filter by address, so we do (when asked to)."""

    name_ = "activity_ws"

    def __init__(self, intake, leaders, stop, *, url: str, filter_by_address: bool = True, ping_s: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 silence_s: float = 30.0):
        super().__init__(intake, leaders, stop)
        self.url, self.filter, self.ping_s, self.silence_s = url, filter_by_address, ping_s, silence_s
        self.clock = clock  # "now" for the feed's future-timestamp check (the fork's clock may run ahead)

    def loop(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url, open_timeout=10, ping_interval=None) as ws:
            ws.send(json.dumps({"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "trades"}]}))
            self.connected = True
            last_msg = last_ping = time.time()
            while not self.stop_event.is_set():
                try:
                    msg = ws.recv(timeout=1.0)
                except TimeoutError:
                    now = time.time()
                    if now - last_ping >= self.ping_s:
                        ws.send("ping")
                        last_ping = now
                    if now - last_msg > self.silence_s:
                        raise RuntimeError(f"no message for {self.silence_s:.0f}s; reconnecting")
                    continue
                last_msg = time.time()
                if time.time() - last_ping >= self.ping_s:
                    ws.send("ping")
                    last_ping = time.time()
                try:
                    f = F.decode_activity_message(msg, self.leaders() if self.filter else None, now=self.clock())
                except F.DecodeError as exc:
                    log.info("bad activity message: %s", exc)
                    continue
                if f is not None and f.leader.lower() in self.leaders():
                    self.emit(f)


class DataApiChannel(Channel):
    """Data API `/activity` polling per followed leader, with a persisted timestamp cursor."""

    name_ = "data_api"

    def __init__(self, intake, leaders, stop, *, url: str, state, poll_s: float = 2.0,
                 clock: Callable[[], float] = time.time):
        super().__init__(intake, leaders, stop)
        import requests

        self.url, self.state, self.poll_s = url.rstrip("/"), state, poll_s
        self.clock = clock  # "now" for the feed's future-timestamp check (the fork's clock may run ahead)
        self.s = requests.Session()
        self.started = int(time.time())

    def loop(self) -> None:
        self.connected = True
        while not self.stop_event.is_set():
            for leader in sorted(self.leaders()):
                name = f"data_api:{leader}"
                start = int(self.state.get_cursor(name) or self.started)
                r = self.s.get(f"{self.url}/activity", params={"user": leader, "type": "TRADE", "start": start,
                                                               "limit": 500, "sortDirection": "ASC"}, timeout=10)
                r.raise_for_status()
                newest = start
                for row in r.json():
                    try:
                        f = F.decode_data_api_row(row, {leader}, now=self.clock())
                    except F.DecodeError as exc:
                        log.info("bad Data API row: %s", exc)
                        continue
                    if f is not None:
                        self.emit(f)
                        newest = max(newest, f.timestamp or newest)
                self.state.set_cursor(name, str(newest))
            self.stop_event.wait(self.poll_s)
