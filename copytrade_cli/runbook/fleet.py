"""`fleet setup|status`: the worker fleet as Polymarket sees it today (LIVE-2026 §6).

A worker is two addresses:
- its **signer**, the EOA derived from TRADING_MNEMONIC / COPY_TRADING_WORKER_KEYS: it holds POL for gas, sends
  the worker's Executor calls on its own nonce lane and signs its CLOB orders and WALLET batches;
- its **deposit wallet**, derived from the signer exactly as the SDK derives it (polymarket/wallets.py): the
  contract that holds the worker's pUSD float and outcome tokens, is the maker of its orders (signature type 3)
  and the Executor's only counterparty for it (`walletOf(worker)`).

`fleet_setup` creates what is missing, idempotently: gas for each signer (from the funder), the deposit wallet
through the relayer, the wallet's approvals (pUSD and outcome tokens to both V2 exchanges and to the Executor, one
WALLET batch of only the missing ones), and the pUSD float (fork: the whale's USDC.e wrapped through the onramp).
Wallet creation and the approval batch go through the UNMODIFIED SDK: `SecureClient.create(..., wallet=W,
api_key=...)` (which WALLET-CREATEs a missing wallet and waits) and `execute_transaction(calls=[...])` with the
SDK's own `erc20_approval_call` / `erc1155_set_approval_for_all_call`. A planted world without a deposit-wallet
factory (an older fork record) has EOA workers: their approvals are plain transactions of the signer.

`fleet_status` reads everything in one JSON-RPC batch: per worker signer, wallet, deployed, gas, float, approvals,
registered on the Executor with that wallet.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ..chain import reads
from ..chain.accounts import trading_wallets, worker_accounts
from ..chain.deploy import addresses
from ..chain.lanes import FeeOracle, TxLane
from ..chain.network import ChainContext, connect_network
from ..chain.proxies import erc20, erc1155, fund_pusd_from_whale, usd
from ..chain.roles import funder_account
from ..chain.rpc import wait_receipt
from ..errors import ConfigError, DeploymentError, FundsError, NotReadyError
from ..polymarket.addresses import chain_contracts, polymarket_addresses
from ..settings import Settings
from ..state import State

MAX_UINT = 2**256 - 1
FORK_GAS_WEI = 50 * 10**18  # POL per signer on the fork (topped up below half)
LIVE_GAS_WEI = 2 * 10**18  # live: top up to 2 POL when below half (= the supervisor's refuel top-up)
FORK_FLOAT_MICRO = 2000 * 10**6  # pUSD Smart Buffer float per wallet on the fork
SDK_THREADS = 10  # workers set up at once through the relayer (each waits for its own wallet's transactions)
LOCAL_POLL_MS = 50  # relayer polls on the fork
Progress = Callable[[str], None]


@dataclass
class WorkerRow:
    """One worker as read on chain."""

    index: int
    signer: str
    wallet: str
    deployed: bool
    gas_wei: int
    float_micro: int
    registered: bool | None  # isWorker(signer) and walletOf(signer) == wallet; None: no Executor
    approvals: dict[str, bool] = field(default_factory=dict)  # "pUSD->Exchange" -> granted

    @property
    def eoa_mode(self) -> bool:
        """The worker trades from its signer itself (a fork planted without deposit wallets)."""
        return self.wallet.lower() == self.signer.lower()

    @property
    def missing_approvals(self) -> list[str]:
        return [k for k, ok in self.approvals.items() if not ok]

    def ready(self, min_gas_wei: int, min_float_micro: int) -> bool:
        """Deployed, approved, registered (when an Executor is known), with gas and float."""
        return (self.deployed and not self.missing_approvals and self.registered is not False
                and self.gas_wei >= min_gas_wei and self.float_micro >= min_float_micro)


@dataclass
class FleetStatus:
    """The fleet as read on chain."""

    network: str
    executor: str | None
    collateral: str
    ctf: str
    spenders: dict[str, str]
    workers: list[WorkerRow]
    min_gas_wei: int
    min_float_micro: int

    @property
    def ready(self) -> int:
        return sum(w.ready(self.min_gas_wei, self.min_float_micro) for w in self.workers)

    def as_dict(self) -> dict[str, Any]:
        rows = []
        for w in self.workers:
            d = asdict(w)
            d.update(eoa_mode=w.eoa_mode, missing_approvals=w.missing_approvals, float=usd(w.float_micro),
                     gas=f"{w.gas_wei / 10**18:.4g}", ready=w.ready(self.min_gas_wei, self.min_float_micro))
            rows.append(d)
        return {"network": self.network, "executor": self.executor, "collateral": self.collateral, "ctf": self.ctf,
                "spenders": self.spenders, "ready": self.ready, "total": len(self.workers), "workers": rows}


@dataclass
class FleetSetupReport:
    """What `fleet setup` did (counts per kind) and the fleet afterwards."""

    network: str
    done: dict[str, int]
    how: str
    status: FleetStatus

    def as_dict(self) -> dict[str, Any]:
        return {"network": self.network, "done": self.done, "how": self.how, **self.status.as_dict()}


# ------------------------------------------------------------------------------------------ reading
def spenders_of(ctx: ChainContext, executor: str | None) -> dict[str, str]:
    """Who a worker wallet must approve: both V2 exchanges (orders) and the Executor (pushes)."""
    if ctx.world is not None:
        out = {"Exchange": ctx.world.exchange}
        if ctx.world.neg_risk_exchange:
            out["NegRiskExchange"] = ctx.world.neg_risk_exchange
    else:
        pm = polymarket_addresses(ctx.chain_id)
        out = {"Exchange": pm.exchange_v2, "NegRiskExchange": pm.neg_risk_exchange_v2}
    if executor:
        out["Executor"] = executor
    return out


def read_fleet(w3, signers: list[str], wallets: list[str], *, collateral: str, ctf: str, spenders: dict[str, str],
               executor: str | None) -> list[WorkerRow]:
    """Every worker's state in one JSON-RPC batch (a failed read counts as missing)."""
    V = reads.view
    per: list[reads.Read] = []
    for s, w in zip(signers, wallets):
        per += [reads.has_code(w), reads.balance(s), V(collateral, "balanceOf(address)", w, returns="uint256")]
        for a in spenders.values():
            per += [V(collateral, "allowance(address,address)", w, a, returns="uint256"),
                    V(ctf, "isApprovedForAll(address,address)", w, a)]
        if executor:
            per += [V(executor, "isWorker(address)", s), V(executor, "walletOf(address)", s, returns="address")]
    got = reads.read_many(w3, per)
    k = 3 + 2 * len(spenders) + (2 if executor else 0)
    rows = []
    for i, (s, w) in enumerate(zip(signers, wallets)):
        g = got[i * k:(i + 1) * k]
        eoa = s.lower() == w.lower()
        approvals: dict[str, bool] = {}
        for j, label in enumerate(spenders):
            allowance, approved = g[3 + 2 * j], g[4 + 2 * j]
            approvals[f"pUSD->{label}"] = isinstance(allowance, int) and allowance >= MAX_UINT // 2
            approvals[f"CTF->{label}"] = approved is True
        registered = None
        if executor:
            wallet_of = g[-1]
            registered = g[-2] is True and isinstance(wallet_of, str) and wallet_of.lower() == w.lower()
        rows.append(WorkerRow(index=i, signer=s, wallet=w, deployed=eoa or g[0] is True,
                              gas_wei=g[1] if isinstance(g[1], int) else 0,
                              float_micro=g[2] if isinstance(g[2], int) else 0, registered=registered,
                              approvals=approvals))
    return rows


def _context(settings: Settings, state: State, network: str | None, count: int | None = None,
             executor: str | None = None):
    ctx = connect_network(settings, state, network)
    accounts = worker_accounts(settings, count)
    signers = [a.address for a in accounts]
    wallets = trading_wallets(signers, ctx.world, is_local=ctx.is_local)
    executor = executor or settings.executor_address or addresses(state, ctx.network).get("Executor")
    c = chain_contracts(ctx.chain_id, ctx.world if ctx.is_local else None, settings)
    return ctx, accounts, signers, wallets, executor, c


def fleet_status(settings: Settings, state: State, network: str | None = None, *,
                 min_float_usd: float | None = None, executor: str | None = None) -> FleetStatus:
    """Each worker's signer, wallet, deployed, gas, float, approvals and registration, read on chain (against
    `executor`, default the active one)."""
    from .readiness import MIN_WORKER_GAS_WEI

    ctx, _accounts, signers, wallets, executor, c = _context(settings, state, network, executor=executor)
    spenders = spenders_of(ctx, executor)
    rows = read_fleet(ctx.w3, signers, wallets, collateral=c.collateral, ctf=c.ctf, spenders=spenders,
                      executor=executor)
    min_float = int(round((min_float_usd or 0) * 10**6))
    return FleetStatus(ctx.network, executor, c.collateral, c.ctf, spenders, rows, MIN_WORKER_GAS_WEI, min_float)


# ------------------------------------------------------------------------------------------ setup
def _environment(settings: Settings, state: State, ctx: ChainContext):
    """The SDK environment: production live; on the fork the local CLOB + relayer + node (polymarket/sdk.py builds
    it as the SDK's own integration tests build theirs), contract addresses from the planted world."""
    from ..polymarket import sdk

    if not ctx.is_local:
        return sdk.production_environment()
    rec = state.get_node()
    clob_url = settings.clob_url or (rec.clob_url if rec else None)
    relayer_url = getattr(rec, "relayer_url", None) if rec else None
    if not clob_url or not relayer_url:
        raise NotReadyError("fleet setup on the fork needs the local CLOB and relayer running "
                            "(`copytrade fork up` starts both)")
    # NOTE: the local relayer mines at once; polling it every 50 ms instead of 200 ms takes fork up's fleet step
    # from ~13 s to a few seconds (it waits for 40 relayer transactions).
    return sdk.local_environment(clob_url, relayer_url, ctx.rpc_url, chain_id=ctx.chain_id,
                                 addresses=sdk.LocalAddresses.of_world(ctx.world), poll_ms=LOCAL_POLL_MS)


def _relayer_key(settings: Settings, ctx: ChainContext, signer: str):
    """The key the relayer takes WALLET-CREATE / WALLET batches with: a builder key live (POLYMARKET_BUILDER_*),
    on the fork a relayer key for the signer's own address (what the local relayer accepts)."""
    from ..polymarket.sdk import BuilderApiKey, RelayerApiKey

    key = settings.polymarket_builder_api_key
    if key is not None:
        return BuilderApiKey(key=key.get_secret_value(), secret=settings.polymarket_builder_secret.get_secret_value(),
                             passphrase=settings.polymarket_builder_passphrase.get_secret_value())
    if ctx.is_local:
        return RelayerApiKey(key="copytrade-fleet", address=signer)
    raise ConfigError("POLYMARKET_BUILDER_API_KEY (+ _SECRET, _PASSPHRASE) is not set: the relayer creates deposit "
                      "wallets and runs their approval batches only for a builder or relayer API key")


def _approval_calls(row: WorkerRow, collateral: str, ctf: str, spenders: dict[str, str]) -> list:
    from ..polymarket.sdk import erc20_approval_call, erc1155_set_approval_for_all_call

    calls = []
    for label, spender in spenders.items():
        if not row.approvals.get(f"pUSD->{label}"):
            calls.append(erc20_approval_call(token_address=collateral, spender=spender, amount=MAX_UINT))
        if not row.approvals.get(f"CTF->{label}"):
            calls.append(erc1155_set_approval_for_all_call(token_address=ctf, operator=spender, approved=True))
    return calls


def _wallet_setup(settings, ctx, env, account, row: WorkerRow, collateral, ctf, spenders) -> tuple[int, int]:
    """One deposit-wallet worker through the SDK: create the wallet if missing, one WALLET batch of the missing
    approvals. Returns (wallets created, approval calls sent)."""
    from ..polymarket.sdk import SecureClient

    calls = _approval_calls(row, collateral, ctf, spenders)
    if row.deployed and not calls:
        return 0, 0
    key = account.key.hex() if isinstance(account.key, bytes) else str(account.key)
    client = SecureClient.create(private_key=key if key.startswith("0x") else "0x" + key, wallet=row.wallet,
                                 environment=env, api_key=_relayer_key(settings, ctx, row.signer))
    try:
        if str(client._ctx.wallet).lower() != row.wallet.lower():  # NOTE: the SDK's resolved wallet
            raise DeploymentError(f"the SDK resolved worker {row.signer}'s wallet to {client._ctx.wallet}, "
                                  f"not the derived {row.wallet}")
        if calls:  # waits for a terminal state; the SDK raises on STATE_FAILED / STATE_INVALID
            client.execute_transaction(calls=calls, metadata="copytrade fleet approvals").wait()
    finally:
        client.close()
    return (0 if row.deployed else 1), len(calls)


def _eoa_approvals(ctx, lane_fees, account, row: WorkerRow, collateral, ctf, spenders) -> list[str]:
    """EOA-mode worker (no deposit wallets planted): its approvals as plain transactions of the signer."""
    token, c1155 = erc20(ctx.w3, collateral), erc1155(ctx.w3, ctf)
    lane, hashes = None, []
    for label, spender in spenders.items():
        if not row.approvals.get(f"pUSD->{label}"):
            lane = lane or TxLane(ctx.w3, account, fees=lane_fees)
            hashes.append(lane.send({"to": collateral, "data": token.encode_abi("approve", args=[spender, MAX_UINT])},
                                    gas=80_000))
        if not row.approvals.get(f"CTF->{label}"):
            lane = lane or TxLane(ctx.w3, account, fees=lane_fees)
            hashes.append(lane.send({"to": ctf, "data": c1155.encode_abi("setApprovalForAll", args=[spender, True])},
                                    gas=80_000))
    return hashes


def fleet_setup(settings: Settings, state: State, network: str | None = None, *, float_usd: float | None = None,
                progress: Progress | None = None, workers: int | None = None,
                executor: str | None = None) -> FleetSetupReport:
    """Create what each worker lacks (gas, deposit wallet, approvals, float); a re-run sends nothing new.
    `float_usd`: the pUSD float per wallet (default: 2000 on the fork, none live); `workers`: how many
    (default SUPERVISOR_WORKER_POOL_SIZE); `executor`: the Executor to approve (default the active one; a
    migration passes its new generation's)."""
    say = progress or (lambda _m: None)
    ctx, accounts, signers, wallets, executor, c = _context(settings, state, network, workers, executor)
    if not executor:
        raise DeploymentError(f"no Executor recorded on {ctx.network}: run `copytrade deploy executor` first "
                              "(the wallets approve it)")
    spenders = spenders_of(ctx, executor)
    collateral, ctf = c.collateral, c.ctf
    float_micro = int(round(float_usd * 10**6)) if float_usd is not None else (FORK_FLOAT_MICRO if ctx.is_local else 0)
    rows = read_fleet(ctx.w3, signers, wallets, collateral=collateral, ctf=ctf, spenders=spenders, executor=executor)
    done = {"gas": 0, "wallets": 0, "approval_calls": 0, "float": 0}
    funder = TxLane(ctx.w3, funder_account(settings), fees=FeeOracle.from_settings(ctx.w3, settings))
    # 1. gas for the signers (they send the Executor calls)
    target = FORK_GAS_WEI if ctx.is_local else LIVE_GAS_WEI
    hashes = [funder.send({"to": r.signer, "value": target - r.gas_wei}, gas=21_000)
              for r in rows if r.gas_wei < target // 2]
    for h in hashes:
        wait_receipt(ctx.w3, h)
    done["gas"] = len(hashes)
    if hashes:
        say(f"gas: topped up {len(hashes)} signer(s)")
    # 2. wallets + approvals
    by_signer = {a.address.lower(): a for a in accounts}
    eoa = [r for r in rows if r.eoa_mode and r.missing_approvals]
    dw = [r for r in rows if not r.eoa_mode and (not r.deployed or r.missing_approvals)]
    how = "EOA workers (no deposit-wallet factory planted): approvals sent by each signer"
    if dw:
        env = _environment(settings, state, ctx)
        say(f"deposit wallets: {sum(not r.deployed for r in dw)} to create, {sum(bool(r.missing_approvals) for r in dw)} "
            "to approve (SDK SecureClient.create + execute_transaction through the relayer)")
        with ThreadPoolExecutor(max_workers=SDK_THREADS) as pool:
            results = list(pool.map(lambda r: _wallet_setup(settings, ctx, env, by_signer[r.signer.lower()], r,
                                                            collateral, ctf, spenders), dw))
        done["wallets"] = sum(x for x, _ in results)
        done["approval_calls"] = sum(y for _, y in results)
    if rows and not rows[0].eoa_mode:
        how = "deposit wallets through the relayer with the unmodified SDK (SecureClient.create, execute_transaction)"
    hashes = []
    for r in eoa:
        hashes += _eoa_approvals(ctx, funder.fees, by_signer[r.signer.lower()], r, collateral, ctf, spenders)
    for h in hashes:
        wait_receipt(ctx.w3, h)
    done["approval_calls"] += len(hashes)
    # 3. pUSD float in the wallets
    needy = [r for r in rows if float_micro and r.float_micro < float_micro // 2]
    for r in needy:
        if ctx.is_local:
            fund_pusd_from_whale(ctx.w3, ctx.world, r.wallet, float_micro - r.float_micro)
        else:
            _live_float(ctx, funder, collateral, r, float_micro - r.float_micro)
    done["float"] = len(needy)
    if needy:
        say(f"float: {len(needy)} wallet(s) topped up to {usd(float_micro)} pUSD")
    after = read_fleet(ctx.w3, signers, wallets, collateral=collateral, ctf=ctf, spenders=spenders, executor=executor)
    from .readiness import MIN_WORKER_GAS_WEI

    status = FleetStatus(ctx.network, executor, collateral, ctf, spenders, after, MIN_WORKER_GAS_WEI, float_micro // 2)
    return FleetSetupReport(ctx.network, done, how, status)


def _live_float(ctx, funder: TxLane, collateral: str, row: WorkerRow, amount: int) -> None:
    token = erc20(ctx.w3, collateral)
    have = token.functions.balanceOf(funder.address).call()
    if have < amount:
        raise FundsError(f"the funder {funder.address} holds {usd(have)} pUSD; wallet {row.wallet} needs "
                         f"{usd(amount)} more float")
    h = funder.send({"to": collateral, "data": token.encode_abi("transfer", args=[row.wallet, amount])}, gas=80_000)
    wait_receipt(ctx.w3, h)


def deploy_executor_with_fleet(settings: Settings, state: State, network: str | None, *, workers: int | None,
                               force: bool, dry_run: bool, progress: Progress | None = None):
    """`copytrade deploy executor`: the Executor (chain/operations.py), then `fleet setup` for the registered
    workers (on the fork always; live when a builder key is configured, else a step says to run it)."""
    from ..chain.deploy import DeployStep
    from ..chain.network import normalize
    from ..chain.operations import deploy_executor_op

    report = deploy_executor_op(settings, state, network, workers=workers, force=force, dry_run=dry_run)
    if dry_run:
        report.steps.append(DeployStep("fleet setup: signer gas, deposit wallets, approvals, pUSD float"))
        return report
    _name, _cid, is_local = normalize(network, settings)
    if not is_local and settings.polymarket_builder_api_key is None:
        report.steps.append(DeployStep("fleet setup not run (no POLYMARKET_BUILDER_API_KEY): run `copytrade fleet "
                                       "setup` to create the deposit wallets and their approvals"))
        return report
    r = fleet_setup(settings, state, network, progress=progress, workers=workers)
    d = r.done
    report.steps.append(DeployStep(f"fleet setup: {d['gas']} gas top-ups, {d['wallets']} wallets created, "
                                   f"{d['approval_calls']} approvals, {d['float']} float top-ups; "
                                   f"{r.status.ready}/{len(r.status.workers)} ready", r.status.executor))
    return report
