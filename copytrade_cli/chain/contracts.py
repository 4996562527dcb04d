"""Compile, cache and deploy the copytrade Vyper contracts (contracts/*.vy, contracts/mocks/*.vy).

- `compile_contract(name)` / `load_artifact(name)` -> `Artifact(abi, bytecode, runtime_bytecode)`.
  Compiled with vyper's Python API (0.4.3), snekmate's install dir on the search path (via sys.path,
  as the vyper CLI does). Cached on disk as JSON under `<repo>/build/contracts/` (or `build_dir`),
  keyed by a hash of the source (+ the sources of local imports) and the compiler version, and in
  process memory: a second call is a file read or a dict lookup, never a compile.
- `deploy(w3, account, name, *args)` signs locally with eth-account and sends with raw web3 (no ape:
  ape's contract API is ~3x slower).
- `plant(w3, account, name, at, *args)` deploys, then copies the runtime code to `at` with
  anvil_setCode / hardhat_setCode (the offline fork's mocks at Polymarket's real addresses).
- `predict_proxy_address(factory, implementation, owner)` mirrors ProxyFactory.predictProxyAddress.

Heavy imports (vyper, web3, eth_utils) happen inside functions: importing this module stays cheap.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
DEFAULT_BUILD_DIR = REPO_ROOT / "build" / "contracts"
COMPILER_VERSION = "0.4.3"  # pinned in pyproject; part of the cache key

# name -> source path relative to contracts/
SOURCES: dict[str, str] = {
    "MockCollateral": "mocks/MockCollateral.vy",
    "MockConditionalTokens": "mocks/MockConditionalTokens.vy",
    "MockExchangeV2": "mocks/MockExchangeV2.vy",
    "MockCollateralToken": "mocks/MockCollateralToken.vy",
    "MockCollateralRamp": "mocks/MockCollateralRamp.vy",
    "Mock1271Wallet": "mocks/Mock1271Wallet.vy",
    "MockAttacker": "mocks/MockAttacker.vy",
    "Executor": "Executor.vy",
    "ProxyFactory": "ProxyFactory.vy",
    "Proxy": "Proxy.vy",
    "Treasury": "Treasury.vy",
    # deposit wallets of the local world (H-wallet; localworld/wallets_plant.py)
    "DepositWallet": "wallet/DepositWallet.vy",
    "DepositWalletBeacon": "wallet/DepositWalletBeacon.vy",
    "DepositWalletFactory": "wallet/DepositWalletFactory.vy",
    "PositionManagerStandIn": "wallet/PositionManagerStandIn.vy",
}

# EIP-1167 minimal proxy init code exactly as vyper's `create_minimal_proxy_to` emits it
# (vyper/builtins/functions.py: eip1167_bytecode): loader + forwarder prefix, target, suffix.
EIP1167_PREFIX = bytes.fromhex("602d3d8160093d39f3363d3d373d3d3d363d73")
EIP1167_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")

_IMPORT_RE = re.compile(r"^\s*(?:from\s+\S+\s+)?import\s", re.M)


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed init code
    runtime_bytecode: str  # 0x-prefixed deployed code

    def selectors(self) -> dict[str, str]:
        """'fn(type,...)' -> '0x12345678' for every function in the ABI."""
        from eth_utils import function_signature_to_4byte_selector

        out = {}
        for item in self.abi:
            if item.get("type") == "function":
                sig = f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"
                out[sig] = "0x" + function_signature_to_4byte_selector(sig).hex()
        return out


def _abi_type(inp: dict) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + t[len("tuple"):]
    return t


_memo: dict[tuple[str, str], tuple[str, Artifact]] = {}
_lock = threading.Lock()


def source_path(name: str) -> Path:
    try:
        return CONTRACTS_DIR / SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown contract {name!r}; known: {', '.join(SOURCES)}") from None


def _source_key(name: str) -> str:
    src = source_path(name).read_bytes()
    h = hashlib.sha256()
    h.update(f"vyper-{COMPILER_VERSION}\0{name}\0".encode())
    h.update(src)
    if _IMPORT_RE.search(src.decode()):
        # Local imports/interfaces: any change under contracts/ invalidates this artifact.
        for p in sorted(CONTRACTS_DIR.rglob("*.vy*")):
            h.update(str(p.relative_to(CONTRACTS_DIR)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:24]


def _compile(name: str) -> Artifact:
    import sys

    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    if not vyper.__version__.startswith(COMPILER_VERSION):
        raise RuntimeError(f"vyper {vyper.__version__} installed, contracts are pinned to {COMPILER_VERSION}")
    path = source_path(name)
    # Same search path as the vyper CLI: sys.path (site-packages -> snekmate), then contracts/.
    search = [Path(p) for p in reversed(sys.path) if p] + [CONTRACTS_DIR, path.parent]
    out = vyper.compile_code(
        path.read_text(),
        contract_path=path.relative_to(CONTRACTS_DIR),
        resolved_path=path,
        input_bundle=FilesystemInputBundle(search),
        output_formats=["abi", "bytecode", "bytecode_runtime"],
    )
    return Artifact(name=name, abi=out["abi"], bytecode=out["bytecode"], runtime_bytecode=out["bytecode_runtime"])


def compile_contract(name: str, build_dir: str | os.PathLike | None = None, force: bool = False) -> Artifact:
    """Compile `name` (or return the cached artifact for this exact source)."""
    bdir = Path(build_dir) if build_dir else DEFAULT_BUILD_DIR
    key = _source_key(name)
    memo_key = (str(bdir), name)
    with _lock:
        hit = _memo.get(memo_key)
        if hit and hit[0] == key and not force:
            return hit[1]
        cache_file = bdir / f"{name}.{key}.json"
        if cache_file.exists() and not force:
            data = json.loads(cache_file.read_text())
            art = Artifact(name=name, abi=data["abi"], bytecode=data["bytecode"],
                           runtime_bytecode=data["runtime_bytecode"])
        else:
            art = _compile(name)
            bdir.mkdir(parents=True, exist_ok=True)
            for stale in bdir.glob(f"{name}.*.json"):
                stale.unlink(missing_ok=True)
            tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"name": name, "source_key": key, "compiler": COMPILER_VERSION,
                                       "abi": art.abi, "bytecode": art.bytecode,
                                       "runtime_bytecode": art.runtime_bytecode}))
            os.replace(tmp, cache_file)  # atomic: concurrent readers never see half a file
        _memo[memo_key] = (key, art)
        return art


def load_artifact(name: str, build_dir: str | os.PathLike | None = None) -> Artifact:
    """The artifact for `name`: from memory, else the disk cache, else compiled now."""
    return compile_contract(name, build_dir=build_dir)


def compile_all(build_dir: str | os.PathLike | None = None) -> dict[str, Artifact]:
    return {n: compile_contract(n, build_dir=build_dir) for n in SOURCES}


# ---------------------------------------------------------------- addresses
def proxy_init_code(implementation: str) -> bytes:
    return EIP1167_PREFIX + bytes.fromhex(implementation[2:] if implementation.startswith("0x") else implementation) + EIP1167_SUFFIX


def proxy_salt(owner: str) -> bytes:
    """ProxyFactory's CREATE2 salt: the owner address left-padded to 32 bytes."""
    return bytes(12) + bytes.fromhex(owner[2:] if owner.startswith("0x") else owner)


def predict_proxy_address(factory: str, implementation: str, owner: str) -> str:
    """CREATE2 address of `owner`'s proxy; equals ProxyFactory.predictProxyAddress(owner)."""
    from eth_utils import keccak, to_checksum_address

    f = bytes.fromhex(factory[2:] if factory.startswith("0x") else factory)
    digest = keccak(b"\xff" + f + proxy_salt(owner) + keccak(proxy_init_code(implementation)))
    return to_checksum_address(digest[12:])


def create_address(sender: str, nonce: int) -> str:
    """Address of the contract `sender` creates with CREATE at `nonce`: keccak(rlp([sender, nonce]))[12:]."""
    from eth_utils import keccak, to_checksum_address

    def rlp_bytes(b: bytes) -> bytes:
        if len(b) == 1 and b[0] < 0x80:
            return b
        assert len(b) < 56
        return bytes([0x80 + len(b)]) + b

    n = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big") if nonce else b""
    payload = rlp_bytes(bytes.fromhex(sender[2:] if sender.startswith("0x") else sender)) + rlp_bytes(n)
    return to_checksum_address(keccak(bytes([0xC0 + len(payload)]) + payload)[12:])


# ---------------------------------------------------------------- deployment
def send_tx(w3: Any, account: Any, tx: dict, wait: bool = True, timeout: float = 60) -> Any:
    """Fill nonce/chainId/gas, sign locally, send raw; return the receipt (status checked) or tx hash."""
    tx = dict(tx)
    tx.setdefault("from", account.address)
    tx.setdefault("chainId", w3.eth.chain_id)
    if "nonce" not in tx:
        tx["nonce"] = w3.eth.get_transaction_count(account.address, "pending")
    if "gas" not in tx:
        tx["gas"] = int(w3.eth.estimate_gas(tx) * 1.2) + 20_000
    if "gasPrice" not in tx:
        from .lanes import floor_fees

        # NOTE: Polygon refuses tips under 25 gwei, and a node's suggestion (what web3's build_transaction fills in;
        # hardhat suggests 1 gwei) can be lower: clamp it up to the floor, rebuilding maxFeePerGas with it.
        floor = floor_fees(w3)
        if int(tx.get("maxPriorityFeePerGas") or 0) < floor["maxPriorityFeePerGas"]:
            tx.update(floor)
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    if not wait:
        return tx_hash
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def transact(w3: Any, account: Any, fn: Any, gas: int | None = None, **overrides: Any) -> Any:
    """Send a bound web3 contract function call (`contract.functions.f(...)`) signed by `account`."""
    tx: dict = {"from": account.address, **overrides}
    if gas is not None:
        tx["gas"] = gas
    return send_tx(w3, account, fn.build_transaction(tx))


_encoders: dict[tuple[str, str], tuple[bytes, list[str]]] = {}


def encode_call(name: str, fn: str, *args: Any) -> str:
    """Calldata for `name.fn(*args)` with eth_abi directly: the same bytes as web3's `encode_abi`, at a
    fraction of its CPU (web3 normalises every argument through recursive formatters; the supervisor's
    profile showed it as the biggest single cost of sending an Executor call). Addresses must be valid
    (checksummed or lowercase); functions must not be overloaded."""
    key = (name, fn)
    enc = _encoders.get(key)
    if enc is None:
        from eth_utils import function_signature_to_4byte_selector

        items = [i for i in load_artifact(name).abi if i.get("type") == "function" and i["name"] == fn]
        if len(items) != 1:
            raise ValueError(f"{name}.{fn}: {len(items)} ABI entries (need exactly one)")
        types = [_abi_type(i) for i in items[0]["inputs"]]
        enc = _encoders[key] = (function_signature_to_4byte_selector(f"{fn}({','.join(types)})"), types)
    from eth_abi import encode

    return "0x" + (enc[0] + encode(enc[1], list(args))).hex()


def contract(w3: Any, name: str, address: str, build_dir: str | os.PathLike | None = None) -> Any:
    """A web3 contract object for a deployed `name` at `address`."""
    return w3.eth.contract(address=w3.to_checksum_address(address), abi=load_artifact(name, build_dir).abi)


def deploy(w3: Any, account: Any, name: str, *args: Any, build_dir: str | os.PathLike | None = None,
           gas: int | None = None, nonce: int | None = None) -> tuple[str, str, int, int]:
    """Deploy `name(*args)` from `account`; return (address, tx_hash, block_number, gas_used)."""
    art = load_artifact(name, build_dir)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    base: dict = {"from": account.address}
    if gas:
        base["gas"] = gas
    if nonce is not None:
        base["nonce"] = nonce
    tx = factory.constructor(*args).build_transaction(base)
    tx.pop("to", None)
    receipt = send_tx(w3, account, tx)
    addr = receipt["contractAddress"]
    if not addr:
        raise RuntimeError(f"deploying {name}: no contract address in receipt")
    return (w3.to_checksum_address(addr), "0x" + bytes(receipt["transactionHash"]).hex(),
            int(receipt["blockNumber"]), int(receipt["gasUsed"]))


def _set_code(w3: Any, address: str, code: str) -> None:
    try:
        from copytrade_cli.chain.cheats import Cheats

        Cheats(w3).set_code(address, code)
        return
    except ImportError:
        pass
    version = str(w3.provider.make_request("web3_clientVersion", [])["result"]).lower()
    method = "hardhat_setCode" if "hardhat" in version else "anvil_setCode"
    resp = w3.provider.make_request(method, [address, code])
    if resp.get("error"):
        raise RuntimeError(f"{method} failed: {resp['error']}")


def plant(w3: Any, account: Any, name: str, at: str, *args: Any,
          build_dir: str | os.PathLike | None = None) -> str:
    """Deploy `name(*args)` normally, then copy its runtime code (immutables included) to `at`.

    Storage at `at` is whatever was there (empty on a fresh fork): call the mock's `initialize(...)`
    afterwards. Returns `at` checksummed.
    """
    addr, *_ = deploy(w3, account, name, *args, build_dir=build_dir)
    code = w3.eth.get_code(addr)
    at = w3.to_checksum_address(at)
    _set_code(w3, at, "0x" + bytes(code).hex())
    return at


# ---------------------------------------------------------------- the product stack
@dataclass(frozen=True)
class Stack:
    """Addresses of one deployed copytrade stack, plus the deployments' gas (name -> gas used)."""

    executor: str
    factory: str
    proxy_implementation: str
    treasury: str
    gas: dict[str, int]


TEST_ADMIN_DELAY_S = 3600  # deploy_stack's default grant delay (tests, bench): long enough to be tested


def deploy_factory(w3: Any, account: Any, executor: str, targets: list[str],
                   build_dir: str | os.PathLike | None = None,
                   admin_delay: int = TEST_ADMIN_DELAY_S) -> tuple[str, str, dict[str, int]]:
    """Deploy a Proxy implementation bound to the factory deployed right after it (the
    implementation holds its factory as an immutable; the factory's constructor checks it).
    Returns (factory, implementation, gas by name). Both txs use explicit consecutive nonces."""
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    factory_addr = create_address(account.address, nonce + 1)
    impl, _, _, g_impl = deploy(w3, account, "Proxy", factory_addr, build_dir=build_dir, nonce=nonce)
    factory, _, _, g_fac = deploy(w3, account, "ProxyFactory", executor, impl, list(targets), admin_delay,
                                  build_dir=build_dir, nonce=nonce + 1)
    assert factory == factory_addr, (factory, factory_addr)
    return factory, impl, {"Proxy": g_impl, "ProxyFactory": g_fac}


def deploy_stack(w3: Any, account: Any, targets: list[str], workers: list[str] = (), build_dir: str | os.PathLike | None = None,
                 admin_delay: int = TEST_ADMIN_DELAY_S, seal: bool = True, wallets: list[str] | None = None) -> Stack:
    """Deploy Treasury, Executor, the Proxy implementation and a ProxyFactory, and wire them in
    the Executor's setup phase: the factory names the executor and allows `targets`; the executor
    trusts the factory and allows `targets` and `workers`; then (`seal`) the setup phase ends, so
    every later grant waits `admin_delay` (chain.roles.grant). `account` owns/administers
    everything. Each worker trades from `wallets[i]` (default: from its own address)."""
    gas: dict[str, int] = {}

    def dep(name: str, *args: Any) -> str:
        addr, _, _, used = deploy(w3, account, name, *args, build_dir=build_dir)
        gas[name] = used
        return addr

    treasury = dep("Treasury")
    executor = dep("Executor", admin_delay)
    factory, impl, g = deploy_factory(w3, account, executor, targets, build_dir=build_dir, admin_delay=admin_delay)
    gas.update(g)
    ex = contract(w3, "Executor", executor, build_dir)
    transact(w3, account, ex.functions.setFactories([factory], True))
    if targets:
        transact(w3, account, ex.functions.setTargets(list(targets), True))
    from .roles import worker_pairs

    pairs = worker_pairs(list(workers), wallets)
    for i in range(0, len(pairs), 256):
        transact(w3, account, ex.functions.addWorkers(pairs[i:i + 256]))
    if seal:
        transact(w3, account, ex.functions.seal())
    return Stack(executor=executor, factory=factory, proxy_implementation=impl, treasury=treasury, gas=gas)
