"""The local relayer as a plain object: Polymarket's gasless relayer for deposit wallets (LIVE-2026 §6.2-6.3).

It deploys deposit wallets (WALLET-CREATE) and runs owner- or session-signed WALLET batches through the planted
factory, paying gas from its own account (dev account 5). Every WALLET submit is checked before anything is
sent, with live's error texts where they are known: `to` must be the factory, the batch nonce must equal the
wallet's on-chain nonce, the deadline must be ahead of the chain's clock, the signature must be the wallet
owner's (or a live session signer's) over the EIP-712 Batch. Refusals are 400s with `{"error": ...}` and change
nothing; accepted submits become transactions with STATE_NEW -> STATE_EXECUTED -> STATE_MINED ->
STATE_CONFIRMED (or STATE_FAILED with `error_msg`), polled at /v1/account/transactions/{id}.

Node I/O is blocking web3 on one worker thread (so the gas account's nonces stay in order); the HTTP layer
(`relayer_server`) awaits it. Faults for tests: `inject_faults(rate_limited=N, busy=N)`.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

from eth_account import Account
from eth_utils import is_address, keccak, to_checksum_address

from copytrade_cli.polymarket import wallets as W

from .relayer_auth import RelayerAuth, RelayerRejection

log = logging.getLogger(__name__)

WALLET = "WALLET"
WALLET_CREATE = "WALLET-CREATE"
ERR_TO = "invalid 'to' field: must be deposit wallet factory"
ERR_BUSY = "wallet busy: the wallet has an active action, retry when it is done"
ERR_IN_FLIGHT = "wallet has in-flight action"
_AUTHORIZE = keccak(text="authorizeSessionSigner(address,uint256)")[:4]
_REVOKE = keccak(text="revokeSessionSigner(address)")[:4]
_ABI_WALLET = [
    {"type": "function", "name": "nonce", "stateMutability": "view", "inputs": [], "outputs": [{"type": "uint256"}]},
    {"type": "function", "name": "owner", "stateMutability": "view", "inputs": [], "outputs": [{"type": "address"}]},
    {"type": "function", "name": "sessionSigners", "stateMutability": "view",
     "inputs": [{"type": "address", "name": "s"}], "outputs": [{"type": "uint256"}]},
]
MAX_CALLS = 32  # DepositWallet.vy MAX_CALLS / MAX_DATA
MAX_DATA = 1024
MAX_METADATA = 500


class TxState(str, Enum):
    """Relayer transaction states as the SDK parses them (models/clob/relayer.py)."""

    NEW = "STATE_NEW"
    EXECUTED = "STATE_EXECUTED"
    MINED = "STATE_MINED"
    CONFIRMED = "STATE_CONFIRMED"
    FAILED = "STATE_FAILED"
    INVALID = "STATE_INVALID"

    @property
    def terminal(self) -> bool:
        return self in (TxState.CONFIRMED, TxState.FAILED, TxState.INVALID)


@dataclass
class RelayerTx:
    """One relayed transaction."""

    id: str
    type: str
    sender: str
    wallet: str
    nonce: int | None = None
    state: TxState = TxState.NEW
    hash: str = ""
    error: str = ""
    metadata: str = ""
    created_at: float = field(default_factory=time.time)
    session: tuple[str, int] | None = None
    """(signer, valid_until) when the batch authorises a session signer (registered once confirmed)."""
    scopes: list[str] = field(default_factory=lambda: ["ALL"])

    def as_json(self) -> dict[str, Any]:
        """GET /v1/account/transactions/{id}."""
        return {"transaction_id": self.id, "transaction_hash": self.hash, "state": self.state.value,
                "error_msg": self.error or None, "type": self.type, "from": self.sender,
                "proxyAddress": self.wallet, "nonce": "" if self.nonce is None else str(self.nonce),
                "metadata": self.metadata, "created_at": int(self.created_at)}


@dataclass
class RelayerOptions:
    """How strict and how slow the local relayer is."""

    confirmations: int = 0
    """Blocks after the receipt before STATE_CONFIRMED (0: confirmed when mined)."""
    receipt_timeout_s: float = 60.0
    priority_gwei: float = 30.0
    """Tip of the relayer's transactions (above Polygon's 25 gwei floor, LIVE-2026 §16)."""
    auth: RelayerAuth = field(default_factory=RelayerAuth)


class LocalRelayer:
    """The relayer's state and rules; `relayer_server` serves it over HTTP."""

    def __init__(self, rpc_url: str, *, factory: str, beacon: str, gas_key: str, chain_id: int = 137,
                 options: RelayerOptions | None = None):
        self.rpc_url = rpc_url
        self.factory = to_checksum_address(factory)
        self.beacon = to_checksum_address(beacon)
        self.chain_id = chain_id
        self.options = options or RelayerOptions()
        self._gas_account = Account.from_key(gas_key)
        self.gas_address = self._gas_account.address
        self.txs: dict[str, RelayerTx] = {}
        self.session_registry: dict[str, dict[str, dict[str, Any]]] = {}  # wallet -> signer -> {scopes, valid_until}
        self.idempotent: dict[str, dict[str, Any]] = {}
        self._faults = {"rate_limited": 0, "busy": 0, "retry_after": 1}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="local-relayer-chain")
        # NOTE: receipts are awaited on their own threads: with interval mining a wait lasts a block, and the
        # sending thread must stay free for reads and the next submit meanwhile.
        self._receipts = ThreadPoolExecutor(4, thread_name_prefix="local-relayer-receipts")
        self._w3: Any = None
        self._lane: Any = None
        self._tasks: set[asyncio.Task] = set()

    @classmethod
    def for_world(cls, world: Any, rpc_url: str, *, gas_key: str, **kwargs: Any) -> "LocalRelayer":
        """A relayer for a planted world (its factory, beacon and chain id)."""
        if not world.deposit_wallet_factory or not world.deposit_wallet_beacon:
            raise ValueError("this world has no deposit-wallet factory planted; plant it again with a current copytrade")
        return cls(rpc_url, factory=world.deposit_wallet_factory, beacon=world.deposit_wallet_beacon,
                   gas_key=gas_key, chain_id=world.chain_id, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to the node (on the chain thread) and check the factory is planted."""
        def _connect():
            from copytrade_cli.chain.lanes import FeeOracle, TxLane
            from copytrade_cli.chain.rpc import connect

            self._w3 = connect(self.rpc_url)
            if not bytes(self._w3.eth.get_code(self.factory)):
                raise RuntimeError(f"no deposit-wallet factory at {self.factory}: plant the world first")
            self._lane = TxLane(self._w3, self._gas_account, chain_id=self.chain_id,
                                fees=FeeOracle(self._w3, priority_gwei=self.options.priority_gwei))
        await self.io(_connect)

    async def stop(self) -> None:
        """Wait for the receipts in flight, then release the chain thread."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.options.receipt_timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._receipts.shutdown(wait=False, cancel_futures=True)

    async def io(self, fn, *args):
        """Run blocking node I/O on the relayer's chain thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- faults ---------------------------------------------------------------------------------
    def inject_faults(self, *, rate_limited: int = 0, busy: int = 0, retry_after: int = 1) -> None:
        """The next `rate_limited` submits answer 429 (Retry-After), the next `busy` ones 400 wallet busy."""
        self._faults.update(rate_limited=rate_limited, busy=busy, retry_after=retry_after)

    def take_fault(self) -> None:
        """Raise the next injected fault, if any is left."""
        if self._faults["rate_limited"] > 0:
            self._faults["rate_limited"] -= 1
            raise RelayerRejection("Too Many Requests", 429, retry_after=self._faults["retry_after"])
        if self._faults["busy"] > 0:
            self._faults["busy"] -= 1
            raise RelayerRejection(ERR_BUSY)

    # -- chain reads (chain thread) ---------------------------------------------------------------
    def _wallet(self, address: str):
        return self._w3.eth.contract(address=address, abi=_ABI_WALLET)

    def _is_deployed(self, address: str) -> bool:
        return bool(bytes(self._w3.eth.get_code(to_checksum_address(address))))

    def _chain_time(self) -> int:
        return int(self._w3.eth.get_block("latest")["timestamp"])

    def wallet_view(self, wallet: str, signer: str) -> dict[str, Any]:
        """(chain thread) deployed?, nonce, owner, `signer`'s session expiry and the chain time of a wallet."""
        if not self._is_deployed(wallet):
            return {"deployed": False}
        c = self._wallet(wallet)
        return {"deployed": True, "nonce": c.functions.nonce().call(), "owner": c.functions.owner().call(),
                "session_until": c.functions.sessionSigners(signer).call(), "now": self._chain_time()}

    def _wallet_of(self, eoa: str) -> str:
        """The deposit wallet an EOA acts for: its own once deployed, else the one wallet it is a session signer of."""
        own = W.deposit_wallet_address(eoa, self.factory, self.beacon)
        sessions = [w for w, signers in self.session_registry.items() if eoa in signers]
        if len(sessions) == 1 and not self._is_deployed(own):
            return sessions[0]
        return own

    # -- reads ----------------------------------------------------------------------------------
    async def deployed(self, address: str) -> bool:
        """GET /deployed: is there a contract at `address`?"""
        if not is_address(address):
            raise RelayerRejection(f"invalid address: {address!r}")
        return await self.io(self._is_deployed, address)

    async def execute_params(self, address: str, type_: str) -> dict[str, str]:
        """GET /v1/account/transactions/params: the next WALLET nonce of the EOA's wallet (on-chain)."""
        if not is_address(address):
            raise RelayerRejection(f"invalid address: {address!r}")
        if type_ != WALLET:
            raise RelayerRejection(f"unsupported type {type_!r}: the local relayer relays deposit wallets (WALLET)")
        eoa = to_checksum_address(address)

        def _read():
            wallet = self._wallet_of(eoa)
            return wallet, self.wallet_view(wallet, eoa)
        wallet, view = await self.io(_read)
        return {"address": wallet, "nonce": str(view.get("nonce", 0))}

    def transaction(self, tx_id: str) -> dict[str, Any]:
        """GET /v1/account/transactions/{id}."""
        tx = self.txs.get(tx_id)
        if tx is None:
            raise RelayerRejection("transaction not found", 404)
        return tx.as_json()

    def session_signers(self, wallet: str) -> dict[str, Any]:
        """The signers the relayer registered for `wallet` (what the CLOB's /v1/user/session-signers lists)."""
        wallet = to_checksum_address(wallet)
        now = time.time()
        signers = [{"address": s, "scopes": v["scopes"], "valid_until": v["valid_until"]}
                   for s, v in self.session_registry.get(wallet, {}).items() if v["valid_until"] > now]
        return {"signers": signers, "wallet": wallet}

    # -- submits --------------------------------------------------------------------------------
    async def submit(self, body: Any, headers: Mapping[str, str], *, method: str = "POST", path: str = "/submit",
                     raw_body: str | None = None) -> dict[str, Any]:
        """POST /submit: WALLET-CREATE or WALLET; returns {transactionID, transactionHash, state}."""
        if not isinstance(body, dict):
            raise RelayerRejection("invalid request body: expected a JSON object")
        sender = body.get("from")
        if not isinstance(sender, str) or not is_address(sender):
            raise RelayerRejection("invalid 'from' field: must be an address")
        sender = to_checksum_address(sender)
        self.options.auth.check(headers, sender, method=method, path=path, body=raw_body)
        self.take_fault()
        kind = body.get("type")
        if kind not in (WALLET, WALLET_CREATE):
            raise RelayerRejection(f"unsupported transaction type {kind!r}: the local relayer relays WALLET-CREATE "
                                   "and WALLET (deposit wallets)")
        to = body.get("to")
        if not isinstance(to, str) or not is_address(to) or to_checksum_address(to) != self.factory:
            raise RelayerRejection(ERR_TO)
        metadata = body.get("metadata", "")
        if not isinstance(metadata, str) or len(metadata) > MAX_METADATA:
            raise RelayerRejection(f"invalid 'metadata' field: a string of at most {MAX_METADATA} characters")
        if kind == WALLET_CREATE:
            return (await self._create(sender, metadata)).as_submit()
        return (await self._batch(sender, body, metadata)).as_submit()

    async def _create(self, owner: str, metadata: str) -> "_Accepted":
        wallet = W.deposit_wallet_address(owner, self.factory, self.beacon)
        self._refuse_in_flight(wallet)
        if await self.io(self._is_deployed, wallet):
            raise RelayerRejection(f"deposit wallet {wallet} is already deployed")
        data = "0x" + (keccak(text="deploy(address)")[:4] + bytes(12) + bytes.fromhex(owner[2:])).hex()
        tx = RelayerTx(id=str(uuid.uuid4()), type=WALLET_CREATE, sender=owner, wallet=wallet, metadata=metadata)
        return await self._send(tx, data)

    async def _batch(self, sender: str, body: dict, metadata: str) -> "_Accepted":
        params = body.get("depositWalletParams")
        if not isinstance(params, dict):
            raise RelayerRejection("invalid 'depositWalletParams' field: expected {depositWallet, deadline, calls}")
        wallet, nonce, deadline, calls, signature = self.parse_batch(body, params)
        return await self.run_batch(sender, wallet, nonce, deadline, calls, signature, metadata)

    @staticmethod
    def parse_batch(body: dict, params: dict):
        """(wallet, nonce, deadline, calls, signature) of a WALLET body; a 400 for anything malformed."""
        wallet = params.get("depositWallet")
        if not isinstance(wallet, str) or not is_address(wallet):
            raise RelayerRejection("invalid 'depositWallet' field: must be an address")
        nonce, deadline = body.get("nonce"), params.get("deadline")
        if not isinstance(nonce, str) or not nonce.isdigit():
            raise RelayerRejection("invalid 'nonce' field: must be a decimal string")
        if not isinstance(deadline, str) or not deadline.isdigit():
            raise RelayerRejection("invalid 'deadline' field: must be a decimal string of unix seconds")
        raw_calls = params.get("calls")
        if not isinstance(raw_calls, list) or not raw_calls:
            raise RelayerRejection("invalid 'calls' field: expected a non-empty list")
        if len(raw_calls) > MAX_CALLS:
            raise RelayerRejection(f"too many calls: {len(raw_calls)} (at most {MAX_CALLS} per batch)")
        try:
            calls = W.calls_from_wire(raw_calls)
        except (ValueError, TypeError, KeyError) as exc:
            raise RelayerRejection(f"invalid 'calls' field: {exc}") from None
        if any(len(c.data) > MAX_DATA for c in calls):
            raise RelayerRejection(f"invalid 'calls' field: call data over {MAX_DATA} bytes")
        sig = body.get("signature")
        try:
            signature = bytes.fromhex(sig[2:]) if isinstance(sig, str) and sig.startswith("0x") else None
        except ValueError:
            signature = None
        if not signature:
            raise RelayerRejection("invalid 'signature' field: must be 0x-prefixed hex")
        return to_checksum_address(wallet), int(nonce), int(deadline), calls, signature

    async def run_batch(self, sender: str, wallet: str, nonce: int, deadline: int, calls: list[W.Call],
                        signature: bytes, metadata: str = "") -> "_Accepted":
        """Check a WALLET batch against the chain (in-flight, nonce, deadline, signature) and send it."""
        self._refuse_in_flight(wallet)
        view = await self.io(self.wallet_view, wallet, sender)
        if not view["deployed"]:
            raise RelayerRejection(f"deposit wallet {wallet} is not deployed")
        if nonce != view["nonce"]:
            raise RelayerRejection(f"batch nonce {nonce} does not match on-chain nonce {view['nonce']}")
        if deadline <= view["now"]:
            raise RelayerRejection(f"batch deadline {deadline} has passed (chain time {view['now']})")
        signer = W.recover_batch_signer(self.chain_id, wallet, nonce, deadline, calls, signature)
        session = W.unwrap_session_signature(signature) is not None
        if signer is None or signer != sender:
            raise RelayerRejection("invalid signature: the batch is not signed by 'from'")
        if not session and signer != view["owner"]:
            raise RelayerRejection(f"invalid signature: {signer} is not the owner of deposit wallet {wallet}")
        if session and view["session_until"] < view["now"]:
            raise RelayerRejection(f"invalid signature: {signer} is not a live session signer of {wallet}")
        if session and any(c.target == wallet for c in calls):
            raise RelayerRejection("a session signer cannot call its deposit wallet itself")
        from eth_abi import encode

        sel = keccak(text="execute(address,(address,uint256,bytes)[],uint256,uint256,bytes)")[:4]
        data = "0x" + (sel + encode(["address", "(address,uint256,bytes)[]", "uint256", "uint256", "bytes"],
                                    [wallet, [(c.target, c.value, c.data) for c in calls], nonce, deadline,
                                     signature])).hex()
        tx = RelayerTx(id=str(uuid.uuid4()), type=WALLET, sender=sender, wallet=wallet, nonce=nonce,
                       metadata=metadata)
        accepted = await self._send(tx, data)
        accepted.calls = calls
        if tx.state != TxState.FAILED:
            self._note_sessions(wallet, calls, tx)
        return accepted

    def _refuse_in_flight(self, wallet: str) -> None:
        if any(t.wallet == wallet and not t.state.terminal for t in self.txs.values()):
            raise RelayerRejection(ERR_IN_FLIGHT)

    def _note_sessions(self, wallet: str, calls: list[W.Call], tx: RelayerTx) -> None:
        from eth_abi import decode

        for c in calls:
            if c.target != wallet:
                continue
            if c.data[:4] == _AUTHORIZE:
                signer, until = decode(["address", "uint256"], c.data[4:])
                tx.session = (to_checksum_address(signer), int(until))
            elif c.data[:4] == _REVOKE:
                (signer,) = decode(["address"], c.data[4:])
                # NOTE: revocation is fenced at once (the SDK's revoke returns as soon as the key leaves the registry)
                self.session_registry.get(wallet, {}).pop(to_checksum_address(signer), None)

    async def _send(self, tx: RelayerTx, data: str) -> "_Accepted":
        from copytrade_cli.errors import ChainError

        self.txs[tx.id] = tx
        try:
            tx.hash = await self.io(lambda: self._lane.send({"to": self.factory, "data": data}))
            tx.state = TxState.EXECUTED
        except ChainError as exc:
            tx.state, tx.error = TxState.FAILED, str(exc)
            log.info("relayer tx %s failed before sending: %s", tx.id, exc)
        else:
            task = asyncio.get_running_loop().create_task(self._follow(tx))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return _Accepted(tx)

    async def _follow(self, tx: RelayerTx) -> None:
        def _receipt():
            from copytrade_cli.chain.rpc import wait_receipt

            return wait_receipt(self._w3, tx.hash, timeout=self.options.receipt_timeout_s, check=False)
        try:
            r = await asyncio.get_running_loop().run_in_executor(self._receipts, _receipt)
        except Exception as exc:  # noqa: BLE001 — a receipt that never comes is a failed relay
            tx.state, tx.error = TxState.FAILED, f"not mined: {exc}"
            return
        if r["status"] != 1:
            tx.state, tx.error = TxState.FAILED, f"transaction {tx.hash} reverted on chain"
            return
        tx.state = TxState.MINED
        while self.options.confirmations and \
                await self.io(lambda: self._w3.eth.block_number) < r["blockNumber"] + self.options.confirmations:
            await asyncio.sleep(0.2)
        if tx.session is not None:
            self.session_registry.setdefault(tx.wallet, {})[tx.session[0]] = {"scopes": list(tx.scopes),
                                                                               "valid_until": tx.session[1]}
        tx.state = TxState.CONFIRMED

@dataclass
class _Accepted:
    tx: RelayerTx
    calls: list = field(default_factory=list)

    def as_submit(self) -> dict[str, Any]:
        return {"transactionID": self.tx.id, "transactionHash": self.tx.hash, "state": self.tx.state.value}
