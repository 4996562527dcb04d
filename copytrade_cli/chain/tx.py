"""Transaction lanes: one per sending account, signing locally and pipelining nonces (send many, wait
later), recovering from nonce gaps, and replacing stuck transactions with a higher fee."""
from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any, Callable

from ..errors import ChainError, FundsError, OutOfGasError

GWEI = 10**9
log = logging.getLogger("copytrade.tx")


def _failover_provider_class():
    from web3 import HTTPProvider

    class FailoverHTTPProvider(HTTPProvider):
        """An HTTP provider over several endpoints (COPY_TRADING_RPC_URL(S), in order): a connection error or
        timeout moves every later request (web3's and `RawRpc`'s) to the next endpoint, round robin."""

        def __init__(self, urls: list[str], **kwargs: Any):
            super().__init__(urls[0], **kwargs)
            self.urls = list(dict.fromkeys(urls))
            self.failovers = 0
            self._fo_lock = threading.Lock()
            if len(self.urls) > 1:
                self.exception_retry_configuration = None  # the next endpoint is the retry

        def fail_over(self, bad_url: str) -> bool:
            """Move off `bad_url` (if still current); False when there is nowhere else to go."""
            if len(self.urls) < 2:
                return False
            with self._fo_lock:
                if str(self.endpoint_uri) == bad_url:
                    i = self.urls.index(bad_url) if bad_url in self.urls else -1
                    self.endpoint_uri = self.urls[(i + 1) % len(self.urls)]
                    self.failovers += 1
                    log.warning("RPC endpoint %s failed; failing over to %s", bad_url, self.endpoint_uri)
            return True

        def make_request(self, method, params):
            import requests

            last: Exception | None = None
            for _ in range(len(self.urls)):
                url = str(self.endpoint_uri)
                try:
                    return super().make_request(method, params)
                except (requests.ConnectionError, requests.Timeout) as exc:
                    last = exc
                    if not self.fail_over(url):
                        raise
            raise last  # type: ignore[misc]

        def make_batch_request(self, batch_requests):
            import requests

            last: Exception | None = None
            for _ in range(len(self.urls)):
                url = str(self.endpoint_uri)
                try:
                    return super().make_batch_request(batch_requests)
                except (requests.ConnectionError, requests.Timeout) as exc:
                    last = exc
                    if not self.fail_over(url):
                        raise
            raise last  # type: ignore[misc]

    return FailoverHTTPProvider


def connect(url: str | list[str], timeout: float = 30.0):
    """A web3 HTTP connection (keep-alive session) to one endpoint, or to several with failover."""
    from web3 import Web3

    urls = [url] if isinstance(url, str) else list(url)
    # NOTE: web3's validation middleware asks eth_chainId before every eth_call / estimate (a second round
    # trip per read); an endpoint's chain id does not change, so that one answer is cached per connection.
    w3 = Web3(_failover_provider_class()(urls, request_kwargs={"timeout": timeout}, cache_allowed_requests=True,
                                         cacheable_requests={"eth_chainId"}))
    return w3


class RpcError(ChainError):
    """The node answered a JSON-RPC request with an error."""


class JsonHttp:
    """POST a JSON body, read a JSON answer, over this thread's keep-alive connection to the URL (http.client:
    about a third of requests' CPU per call). A connection the server closed meanwhile is retried once on a
    fresh one; an unreachable, refusing or timed-out endpoint raises ChainError."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self, url: str):
        import http.client
        from urllib.parse import urlsplit

        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        c = conns.get(url)
        if c is None:
            u = urlsplit(url)
            cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
            c = cls(u.hostname, u.port, timeout=self.timeout)
            c.path_ = (u.path or "/") + (f"?{u.query}" if u.query else "")
            conns[url] = c
        return c

    def _drop(self, url: str) -> None:
        c = (getattr(self._local, "conns", None) or {}).pop(url, None)
        if c is not None:
            c.close()

    def post(self, url: str, body: Any) -> Any:
        import http.client
        import json as _json

        data = _json.dumps(body).encode()
        for fresh in (False, True):
            c = self._conn(url)
            try:
                c.request("POST", c.path_, body=data, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                raw = r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(url)
                if fresh:
                    raise ChainError(f"RPC {url} unreachable: {exc}") from None
                continue
            except (OSError, http.client.HTTPException) as exc:  # refused, unreachable, timed out
                self._drop(url)
                raise ChainError(f"RPC {url} unreachable: {exc}") from None
            if r.status >= 400 and not raw.strip().startswith((b"{", b"[")):
                raise ChainError(f"RPC {url} answered HTTP {r.status}")
            return _json.loads(raw)
        raise ChainError(f"RPC {url} unreachable")  # pragma: no cover


class RawRpc:
    """Plain JSON-RPC (keep-alive requests session per thread) for the hot paths: several times less CPU per
    call than web3's middleware stack. Follows the web3 provider's current endpoint and its failover."""

    def __init__(self, w3, timeout: float = 30.0):
        self.w3 = w3
        self.timeout = timeout
        self._http = JsonHttp(timeout)
        self._ids = itertools.count(1)

    def _post(self, body: Any) -> Any:
        provider = self.w3.provider
        tries = len(getattr(provider, "urls", None) or [1])
        for attempt in range(tries):
            url = str(provider.endpoint_uri)
            try:
                return self._http.post(url, body)
            except ChainError:
                fo = getattr(provider, "fail_over", None)
                if attempt == tries - 1 or fo is None or not fo(url):
                    raise
        raise ChainError("unreachable")  # pragma: no cover

    def call(self, method: str, params: list | None = None) -> Any:
        d = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []})
        if d.get("error"):
            err = d["error"]
            raise RpcError(f"{method}: {err.get('message', err) if isinstance(err, dict) else err}")
        return d.get("result")

    def batch(self, calls: list[tuple[str, list]]) -> list[Any]:
        """Results in order; an entry that failed is an `RpcError` instance (not raised)."""
        if not calls:
            return []
        base = next(self._ids) * 1000
        out = self._post([{"jsonrpc": "2.0", "id": base + i, "method": m, "params": p}
                          for i, (m, p) in enumerate(calls)])
        if isinstance(out, dict):  # the whole batch refused
            return [RpcError(str(out.get("error")))] * len(calls)
        by_id = {d.get("id"): d for d in out}
        res: list[Any] = []
        for i, (m, _p) in enumerate(calls):
            d = by_id.get(base + i) or {}
            res.append(RpcError(f"{m}: {d.get('error')}") if d.get("error") or "result" not in d else d["result"])
        return res

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """A receipt's essentials (status, gasUsed, blockNumber as ints), or None while not mined."""
        r = self.call("eth_getTransactionReceipt", [tx_hash])
        return _receipt(r) if r else None


def _receipt(r: dict[str, Any]) -> dict[str, Any]:
    from hexbytes import HexBytes

    return {"transactionHash": HexBytes(r.get("transactionHash") or "0x"), "status": int(r.get("status") or "0x0", 16),
            "gasUsed": int(r.get("gasUsed") or "0x0", 16), "blockNumber": int(r.get("blockNumber") or "0x0", 16),
            "effectiveGasPrice": int(r.get("effectiveGasPrice") or "0x0", 16)}


class ReceiptWatcher:
    """One poller for every transaction the process waits on: each tick asks for all the pending receipts in
    ONE JSON-RPC batch and wakes the waiters whose transaction was mined. Twenty workers polling their own
    receipts every 20 ms were ~1,000 requests/s to the node (and most of the supervisor's CPU)."""

    def __init__(self, rr: RawRpc, poll_s: float = 0.02):
        self.rr, self.poll_s = rr, poll_s
        self._cv = threading.Condition()
        self._want: dict[str, int] = {}  # tx hash -> number of waiters
        self._got: dict[str, dict[str, Any]] = {}
        self._events: dict[str, list[threading.Event]] = {}  # tx hash -> the waiters' events
        self._thread: threading.Thread | None = None
        self.polls = 0

    def wait_any(self, hashes: list[str], timeout: float) -> tuple[str, dict[str, Any]] | None:
        """The first of `hashes` to be mined, with its receipt, or None after `timeout` seconds."""
        keys = [h.lower() for h in hashes]
        deadline = time.time() + max(0.0, timeout)
        # NOTE: each waiter sleeps on its own Event, set only when one of ITS hashes is mined. A shared
        # Condition with notify_all woke every waiting group thread on every mined receipt: with ~100 groups
        # in flight that was thousands of GIL hand-offs per second and every group's wait got slower.
        ev = threading.Event()
        with self._cv:
            for k in keys:
                self._want[k] = self._want.get(k, 0) + 1
                self._events.setdefault(k, []).append(ev)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="receipt-watcher", daemon=True)
                self._thread.start()
            self._cv.notify()  # the watcher: something new to poll
        try:
            while True:
                with self._cv:
                    ev.clear()
                    for h, k in zip(hashes, keys):
                        r = self._got.get(k)
                        if r is not None:
                            return h, r
                left = deadline - time.time()
                if left <= 0:
                    return None
                ev.wait(left)
        finally:
            with self._cv:
                for k in keys:
                    evs = self._events.get(k)
                    if evs is not None:
                        try:
                            evs.remove(ev)
                        except ValueError:
                            pass
                        if not evs:
                            self._events.pop(k, None)
                    n = self._want.get(k, 0) - 1
                    if n <= 0:
                        self._want.pop(k, None)
                        self._got.pop(k, None)
                    else:
                        self._want[k] = n

    def _run(self) -> None:
        idle = 0
        while True:
            with self._cv:
                want = [k for k in self._want if k not in self._got]
                if not want:
                    if not self._want:
                        idle += 1
                        if idle > 500:  # ~10 s with nothing to watch: let the thread go
                            self._thread = None
                            return
                    self._cv.wait(self.poll_s)
                    continue
            idle = 0
            try:
                got = self.rr.batch([("eth_getTransactionReceipt", [h]) for h in want])
            except Exception:  # noqa: BLE001 — node unreachable: waiters keep their own deadlines
                got = [None] * len(want)
            self.polls += 1
            with self._cv:
                for k, r in zip(want, got):
                    if r and not isinstance(r, Exception) and k in self._want:
                        self._got[k] = _receipt(r)
                        for ev in self._events.get(k, ()):
                            ev.set()
            time.sleep(self.poll_s)


_watchers: dict[int, ReceiptWatcher] = {}


def receipt_watcher(w3) -> ReceiptWatcher | None:
    """The process-wide receipt watcher of a web3 connection over HTTP (None otherwise)."""
    rr = raw_rpc(w3)
    if rr is None:
        return None
    w = _watchers.get(id(rr))
    if w is None or w.rr is not rr:
        with _raw_lock:
            w = _watchers.get(id(rr))
            if w is None or w.rr is not rr:
                w = _watchers[id(rr)] = ReceiptWatcher(rr)
    return w


_raw: dict[int, tuple[Any, RawRpc]] = {}
_raw_lock = threading.Lock()


def raw_rpc(w3) -> RawRpc | None:
    """The `RawRpc` of a web3 connection over HTTP (None for other providers: use web3 then)."""
    hit = _raw.get(id(w3))
    if hit is not None and hit[0] is w3:
        return hit[1]
    uri = str(getattr(w3.provider, "endpoint_uri", "") or "")
    if not uri.startswith(("http://", "https://")):
        return None
    with _raw_lock:
        rr = RawRpc(w3)
        _raw[id(w3)] = (w3, rr)
    return rr


def connect_checked(urls: list[str], expect_chain_id: int | None = None, timeout: float = 30.0):
    """The first endpoint that answers (failover order), checked against the expected chain id."""
    errors = []
    for url in urls:
        w3 = connect(url, timeout)
        try:
            cid = w3.eth.chain_id
        except Exception as exc:  # noqa: BLE001 — try the next endpoint
            errors.append(f"{url}: {type(exc).__name__}")
            continue
        if expect_chain_id is not None and cid != expect_chain_id:
            errors.append(f"{url}: chain id {cid}, expected {expect_chain_id}")
            continue
        if len(urls) > 1:
            # Keep the others as failover endpoints (tried in order after this one, round robin).
            i = urls.index(url)
            w3 = connect(urls[i:] + urls[:i], timeout)
            w3.eth.chain_id  # noqa: B018 — cache it on the new connection
        return w3
    raise ChainError("no RPC endpoint answered (" + "; ".join(errors) + "); start the fork with "
                     "`copytrade fork up` or fix COPY_TRADING_RPC_URL(S)")


class FeeOracle:
    """EIP-1559 fees, cached briefly so a burst of sends costs one RPC call."""

    def __init__(self, w3, priority_gwei: float = 1.0, ttl: float = 2.0):
        self.w3 = w3
        self.priority = int(priority_gwei * GWEI)
        self.ttl = ttl
        self._at = 0.0
        self._base = 0
        self._lock = threading.Lock()

    def fees(self, bump: float = 1.0) -> dict[str, int]:
        """maxFeePerGas / maxPriorityFeePerGas, multiplied by `bump` for replacements."""
        with self._lock:
            if time.time() - self._at > self.ttl:
                block = self.w3.eth.get_block("pending")
                self._base = int(block.get("baseFeePerGas") or self.w3.eth.gas_price)
                self._at = time.time()
            base = self._base
        prio = int(self.priority * bump)
        return {"maxFeePerGas": int((2 * base + self.priority) * bump), "maxPriorityFeePerGas": prio}


class TxLane:
    """Sends transactions for one account with locally tracked, pipelined nonces."""

    def __init__(self, w3, account, chain_id: int | None = None, fees: FeeOracle | None = None):
        self.w3 = w3
        self.account = account
        self.address = account.address
        self.chain_id = chain_id or w3.eth.chain_id
        self.fees = fees or FeeOracle(w3)
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self.sent: dict[int, dict[str, Any]] = {}  # nonce -> tx (for speed-ups)
        self.nonce_of: dict[str, int] = {}  # tx hash -> nonce

    def resync(self) -> int:
        """Re-read the next nonce from the node (after a gap or a restart)."""
        with self._lock:
            self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")
            return self._nonce

    def send(self, tx: dict[str, Any], *, gas: int | None = None, retries: int = 2,
             before_send: Callable[[str], None] | None = None) -> str:
        """Sign and send without waiting; returns the tx hash. Nonce errors resync once and retry.
        `before_send(hash)` runs after signing and before broadcasting (write-ahead journalling)."""
        for attempt in range(retries + 1):
            with self._lock:
                if self._nonce is None:
                    self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")
                nonce = self._nonce
                full = {"chainId": self.chain_id, "nonce": nonce, "from": self.address, "value": 0, **tx}
                full.update(self.fees.fees())
                if gas is not None:
                    full["gas"] = gas
                elif "gas" not in full:
                    full["gas"] = self._estimate(full)
                full.pop("from", None)
                signed = self.account.sign_transaction(full)
                if before_send is not None:
                    before_send("0x" + bytes(signed.hash).hex())
                try:
                    rr = raw_rpc(self.w3)
                    if rr is not None:
                        h = bytes.fromhex(rr.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])[2:])
                    else:
                        h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Exception as exc:  # noqa: BLE001 — classify the node's answer
                    msg = str(exc).lower()
                    if "nonce" in msg and attempt < retries:
                        self._nonce = None
                        continue
                    if "insufficient funds" in msg:
                        raise OutOfGasError(f"{self.address} lacks gas to send a transaction; fund it "
                                         "(on the fork `copytrade fork up` funds the fleet)") from None
                    raise ChainError(f"transaction from {self.address} rejected: {str(exc)[:200]}") from None
                self._nonce = nonce + 1
                self.sent[nonce] = full
                if len(self.sent) > 256:
                    self.sent.pop(min(self.sent))
                hx = "0x" + bytes(h).hex()
                self.nonce_of[hx] = nonce
                if len(self.nonce_of) > 512:
                    self.nonce_of.pop(next(iter(self.nonce_of)))
                return hx
        raise ChainError(f"could not send from {self.address}: nonce kept moving")

    def _estimate(self, tx: dict[str, Any]) -> int:
        try:
            est = self.w3.eth.estimate_gas({k: v for k, v in tx.items() if k not in ("nonce", "maxFeePerGas",
                                                                                    "maxPriorityFeePerGas")})
        except Exception as exc:  # noqa: BLE001
            raise ChainError(f"transaction would revert: {_revert_reason(exc)}") from None
        return int(est * 1.25) + 10_000

    def transact(self, tx: dict[str, Any], *, gas: int | None = None, timeout: float = 60) -> dict[str, Any]:
        """Send and wait for a successful receipt."""
        return wait_receipt(self.w3, self.send(tx, gas=gas), timeout=timeout)

    def speed_up(self, nonce: int, bump: float = 1.3) -> str:
        """Replace a stuck transaction (same nonce) with a higher fee."""
        with self._lock:
            old = dict(self.sent[nonce])
            fees = self.fees.fees(bump)
            old["maxFeePerGas"] = max(fees["maxFeePerGas"], int(old["maxFeePerGas"] * bump) + 1)
            old["maxPriorityFeePerGas"] = max(fees["maxPriorityFeePerGas"], int(old["maxPriorityFeePerGas"] * bump) + 1)
            signed = self.account.sign_transaction(old)
            h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            self.sent[nonce] = old
            hx = "0x" + bytes(h).hex()
            self.nonce_of[hx] = nonce
            return hx

    def plug_gaps(self, below: int) -> list[int]:
        """Nonce gap recovery: if the node holds no transaction of ours for some nonce below `below` (one was
        dropped or never reached it), our later ones can never be mined; fill each missing nonce with a
        zero-value self-transfer. Returns the nonces plugged."""
        try:
            ready = self.w3.eth.get_transaction_count(self.address, "pending")
        except Exception:  # noqa: BLE001 — node unreachable: try again at the next check
            return []
        missing = list(range(ready, below))
        if not missing:
            return []
        with self._lock:
            fees = self.fees.fees(1.2)
            for n in missing:
                tx = {"chainId": self.chain_id, "nonce": n, "to": self.address, "value": 0, "gas": 21_000, **fees}
                signed = self.account.sign_transaction(tx)
                try:
                    self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Exception as exc:  # noqa: BLE001 — e.g. it arrived meanwhile: fine either way
                    log.info("plugging nonce %d of %s: %s", n, self.address, str(exc)[:120])
        log.warning("nonce gap of %s at %s filled with zero-value self-transfers", self.address, missing)
        return missing

    def wait(self, tx_hash: str, *, stuck_after: float = 30.0, timeout: float = 180.0,
             on_replace=None) -> dict[str, Any]:
        """Wait for a receipt; a transaction still pending after `stuck_after` seconds is replaced by the
        same nonce with a higher fee (`on_replace(new_hash)` lets the caller journal it). Whichever of the
        hashes is mined wins; a revert raises ChainError."""
        hashes = [tx_hash]
        deadline = time.time() + timeout
        bump_at = time.time() + stuck_after
        watcher = receipt_watcher(self.w3)
        while True:
            if watcher is not None:
                got = watcher.wait_any(hashes, max(0.0, min(bump_at, deadline) - time.time()))
                if got is not None:
                    h, r = got
                    if r["status"] != 1:
                        raise ChainError(f"transaction {h} reverted (gas used {r['gasUsed']})")
                    return r
            else:
                for h in list(hashes):
                    try:
                        r = self.w3.eth.get_transaction_receipt(h)
                    except Exception:  # noqa: BLE001 — not mined yet
                        r = None
                    if r is not None:
                        if r["status"] != 1:
                            raise ChainError(f"transaction {h} reverted (gas used {r['gasUsed']})")
                        return r
            now = time.time()
            if now > deadline:
                raise ChainError(f"transaction {tx_hash} not mined within {timeout:.0f}s (also after speed-ups)")
            nonce = self.nonce_of.get(hashes[-1])
            if now >= bump_at and nonce is not None and self.plug_gaps(nonce):
                bump_at = now + stuck_after  # a lower nonce was missing: it is filled now, ours can be mined
                continue
            if now >= bump_at and nonce is not None and nonce in self.sent:
                try:
                    new = self.speed_up(nonce)
                    hashes.append(new)
                    if on_replace:
                        on_replace(new)
                except Exception:  # noqa: BLE001 — e.g. already mined meanwhile: keep waiting
                    pass
                bump_at = now + stuck_after
            if watcher is None:
                time.sleep(0.02)


def wait_receipt(w3, tx_hash: str, timeout: float = 60, poll: float = 0.02, check: bool = True) -> dict[str, Any]:
    """Wait for a receipt; raise ChainError if it reverted (when `check`)."""
    deadline = time.time() + timeout
    while True:
        try:
            r = w3.eth.get_transaction_receipt(tx_hash)
            if r is not None:
                if check and r["status"] != 1:
                    raise ChainError(f"transaction {tx_hash} reverted (gas used {r['gasUsed']})")
                return r
        except ChainError:
            raise
        except Exception:  # noqa: BLE001 — TransactionNotFound until mined
            pass
        if time.time() > deadline:
            raise ChainError(f"transaction {tx_hash} not mined within {timeout:.0f}s")
        time.sleep(poll)


def _revert_reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("execution reverted: ", "reverted: "):
        if marker in text:
            return text.split(marker, 1)[1].split("'")[0].split('"')[0][:160]
    return text[:160]
