"""`copytrade supervise --dry-run`: detect and decide on real traffic, simulate each copy against the CLOB's current
order book, journal what would have happened; no transaction, no order, no reservation.

The same channels (`channels.build_channels`) hand fills to `DryRunIntake` instead of the intake: dedup, the
follow filter, the chain reads sizing needs (read-only), the supervisor's own `decide`, then each copy walked
through `GET /book` by size with the market's fee (`/clob-markets` `fd.r`/`fd.e`) and minimum size
(`simfill.walk`). Rows are kept apart from real ones so a later real run is never blocked by them: the signal and
jobs carry the fill key `dryrun:<key>`, jobs have status `dry_run` (it would have filled) or `dry_run_skipped`,
and the channels' cursors are `dryrun:<name>` (a real supervisor's cursors never move).
"""
from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from typing import Any, Callable

import httpx

from ...polymarket.fills import LeaderFill
from ..coordination.local import TTLSet
from ..decide import FollowBook, decide
from ..plan import SizingReader, iso
from ..service import Service
from . import simfill

log = logging.getLogger("copytrade.supervisor")
PREFIX = "dryrun:"
DRY_RUN = "dry_run"
DRY_RUN_SKIPPED = "dry_run_skipped"
DRY_STATUSES = (DRY_RUN, DRY_RUN_SKIPPED)
MICRO = 10**6
_JOB_COLS = ["fill_key", "leader", "side", "token_id", "condition_id", "follower", "follow_id", "flow", "status",
             "reason", "usd", "shares", "price"]


class DryCursors:
    """The state file seen by dry-run channels: their cursors are `dryrun:<name>`, everything else as is."""

    def __init__(self, state):
        self._state = state

    def get_cursor(self, name: str) -> str | None:
        return self._state.get_cursor(PREFIX + name)

    def set_cursor(self, name: str, value: str) -> None:
        self._state.set_cursor(PREFIX + name, value)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._state, item)


class BookReader:
    """`GET /book` and `/clob-markets/{condition}` of the CLOB (public, no auth), cached briefly."""

    def __init__(self, clob_url: str, *, ttl_s: float = 1.0, timeout: float = 5.0):
        self.url = clob_url.rstrip("/")
        self.http = httpx.Client(timeout=timeout)
        self.ttl_s = ttl_s
        self._books: dict[str, tuple[float, Any]] = {}
        self._fees: dict[str, tuple[Decimal, int] | None] = {}

    def book(self, token_id: str) -> dict[str, Any] | None:
        hit = self._books.get(token_id)
        if hit and time.time() - hit[0] < self.ttl_s:
            return hit[1]
        try:
            r = self.http.get(self.url + "/book", params={"token_id": token_id})
            body = r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            body = None
        self._books[token_id] = (time.time(), body)
        return body

    def fee(self, condition_id: str | None) -> tuple[Decimal, int]:
        """(rate, exponent) of the market; unknown -> the default category rate (the stricter reading)."""
        if condition_id and condition_id not in self._fees:
            got = None
            try:
                r = self.http.get(f"{self.url}/clob-markets/{condition_id}")
                fd = (r.json() or {}).get("fd") if r.status_code == 200 else None
                if isinstance(fd, dict) and fd.get("r") is not None:
                    got = (Decimal(str(fd["r"])), int(fd.get("e") or 1))
                elif r.status_code == 200:
                    got = (Decimal(0), 1)  # the market has no fee schedule
            except (httpx.HTTPError, ValueError, ArithmeticError):
                got = None
            self._fees[condition_id] = got
        return self._fees.get(condition_id or "") or (simfill.DEFAULT_FEE_RATE, 1)

    def close(self) -> None:
        self.http.close()


class DryRunIntake:
    """What channels call in dry-run (a `detect.FillSink`)."""

    def __init__(self, *, settings, state, chain, book: FollowBook, sizing: SizingReader, books: BookReader,
                 say: Callable[[str], None]):
        self.settings, self.state, self.chain, self.book = settings, state, chain, book
        self.sizing, self.books, self.say = sizing, books, say
        self.dedup = TTLSet(settings.supervisor_dedup_ttl_ms / 1000)
        self._lock = threading.Lock()
        self.simulated = 0

    def paused(self) -> bool:
        return False

    def on_fills(self, fills: list[LeaderFill]) -> None:
        for f in fills:
            self.on_fill(f)

    def on_fill(self, fill: LeaderFill) -> None:
        try:
            self._take(fill)
        except Exception:  # noqa: BLE001 — one bad fill never stops the channel
            log.exception("dry-run: processing fill %s failed", fill.key)

    def _take(self, fill: LeaderFill) -> None:
        key = PREFIX + f"{fill.leader.lower()}:{fill.key}"
        new, _ = self.dedup.add(key, fill.source)
        if not new:
            return
        when = iso(fill.timestamp if fill.timestamp else fill.seen_at)
        follows = [f for f in self.book.followers_of(fill.leader) if f.created_at <= when]
        if not follows:
            return
        balances, positions, before = self.sizing.read(fill, follows)
        # nothing executes here, so the decision is the one the supervisor would take with trading enabled
        d = decide(fill, follows, settings=self.settings, is_local=True, balances=balances, positions=positions,
                   leader_position_before=before, unroutable=self.state.unroutable_proxies(self.chain.network))
        base = (key, fill.leader, fill.side, fill.token_id, fill.condition_id)
        rows = [(*base, sk.follow.follower, sk.follow.id, sk.follow.flow, DRY_RUN_SKIPPED, sk.reason, None, None,
                 None) for sk in d.skips]
        lines = []
        for cp in d.copies:
            got = self._simulate(fill, cp)
            f = cp.follow
            if got.filled:
                usd, shares = Decimal(got.usd_micro) / MICRO, Decimal(got.shares_micro) / MICRO
                why = (f"would {fill.side} {shares} shares for {usd} USD (avg {got.avg_price:.4f}, {got.levels} "
                       f"level(s), fee {Decimal(got.fee_micro) / MICRO} USD); nothing sent")
                rows.append((*base, f.follower, f.id, f.flow, DRY_RUN, why, str(usd), str(shares),
                             str(got.avg_price.quantize(Decimal("0.000001")))))
                self.simulated += 1
            else:
                why = f"would not fill: {got.reason}"
                rows.append((*base, f.follower, f.id, f.flow, DRY_RUN_SKIPPED, why, None, None, None))
            lines.append(f"[DryRun] {f.follower[:10]}… {why}")
        with self._lock, self.state.transaction():
            self.state.record_signal({
                "fill_key": key, "leader": fill.leader, "tx_hash": fill.tx_hash, "log_index": fill.log_index,
                "token_id": fill.token_id, "condition_id": fill.condition_id, "side": fill.side,
                "shares": str(fill.shares), "price": None if fill.price is None else str(fill.price),
                "usd": None if fill.usd is None else str(fill.usd), "channel": fill.source,
                "detected_ms": fill.seen_at * 1000})
            self.state.claim_jobs(rows, _JOB_COLS)
        self.say(f"🚨 SIGNAL DETECTED via {fill.source} (dry run): {fill.leader} {fill.side} {fill.shares:.2f} shares"
                 + (f" @ {fill.price}" if fill.price is not None else ""))
        for line in lines:
            self.say(line)

    def _simulate(self, fill: LeaderFill, cp) -> simfill.Fill:
        body = self.books.book(fill.token_id)
        if body is None:
            return simfill.Fill(False, reason="order book unavailable")
        rate, exp = self.books.fee(fill.condition_id)
        try:
            mins = Decimal(str(body.get("min_order_size"))) if body.get("min_order_size") is not None else None
        except ArithmeticError:
            mins = None
        amount = cp.usd_micro if cp.side == "BUY" else cp.shares_micro
        return simfill.walk(simfill.levels_of(body, cp.side), cp.side, amount, cp.price_limit, fee_rate=rate,
                            fee_exponent=exp, min_shares=mins)


class DryRunSupervisor:
    """Channels + the dry-run intake + the follow-config refresh; `run()` blocks until stopped."""

    def __init__(self, settings, state, chain, *, channels: tuple[str, ...], clob_url: str,
                 say: Callable[[str], None], max_seconds: float | None = None, data_api_poll_s: float = 2.0):
        from ...polymarket.addresses import chain_contracts

        self.settings, self.state, self.chain, self.say = settings, state, chain, say
        self.names, self.max_seconds, self.poll = channels, max_seconds, data_api_poll_s
        self.service = Service()
        self.stop_event = self.service.stop
        self.book = FollowBook(state, shard_count=settings.supervisor_shard_count,
                               shard_index=settings.supervisor_shard_index)
        self.contracts = chain_contracts(chain.chain_id, chain.world, settings)
        self.sizing = SizingReader(chain)
        self.sizing.collateral, self.sizing.ctf = self.contracts.collateral, self.contracts.ctf
        self.books = BookReader(clob_url)
        self.intake = DryRunIntake(settings=settings, state=state, chain=chain, book=self.book, sizing=self.sizing,
                                   books=self.books, say=say)
        self.channels: list = []

    def start(self) -> None:
        from ..channels import build_channels

        self.channels = build_channels(self.names, intake=self.intake, leaders=self.book.leaders,
                                       stop=self.stop_event, settings=self.settings, state=DryCursors(self.state),
                                       chain=self.chain, exchange=self.contracts.exchange, ctf=self.contracts.ctf,
                                       world=self.chain.world, data_api_poll_s=self.poll)
        for ch in self.channels:
            ch.start()
            self.service.adopt(ch)
        self.service.spawn("config-refresh", self._refresh)
        self.say(f"[DryRun] watching {len(self.book.leaders())} leaders via {', '.join(c.name_ for c in self.channels)}"
                 f"; copies are simulated against {self.books.url}/book: no transaction, no order")

    def _refresh(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.supervisor_config_refresh_ms / 1000):
            try:
                self.book.refresh()
            except Exception:  # noqa: BLE001
                log.exception("follow-config refresh failed")

    def run(self) -> int:
        """Until stopped (or max_seconds); returns how many copies were simulated as filled."""
        t0 = time.time()
        try:
            while not self.stop_event.is_set():
                if self.max_seconds is not None and time.time() - t0 >= self.max_seconds:
                    break
                time.sleep(0.05)
        finally:
            self.stop_event.set()
            self.service.halt()
            self.service.join(3.0)
            self.books.close()
        return self.intake.simulated


def clob_url_for(settings, state, chain) -> str:
    """The CLOB whose books the dry run walks: COPYTRADE_CLOB_URL, else the fork's local CLOB, else Polymarket's."""
    from ...errors import NotReadyError

    if settings.clob_url:
        return settings.clob_url
    if chain.is_local:
        rec = state.get_node()
        if not rec or not rec.clob_url:
            raise NotReadyError("the local CLOB is not running: `copytrade fork up` starts it")
        return rec.clob_url
    return "https://clob.polymarket.com"


def run_dry_run(settings, state, chain, *, channels: tuple[str, ...], say: Callable[[str], None],
                max_seconds: float | None = None) -> int:
    """`supervise --dry-run`: until SIGINT/SIGTERM (or max_seconds); returns the copies simulated as filled."""
    import signal

    sup = DryRunSupervisor(settings, state, chain, channels=channels, clob_url=clob_url_for(settings, state, chain),
                           say=say, max_seconds=max_seconds)
    signal.signal(signal.SIGTERM, lambda *_: sup.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: sup.stop_event.set())
    sup.start()
    n = sup.run()
    say(f"Dry run stopped: {n} copies simulated as filled; nothing was executed (`copytrade jobs list` shows them)")
    return n
