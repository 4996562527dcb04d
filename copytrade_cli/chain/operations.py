"""Library entry points behind `copytrade deploy ...` and `copytrade proxy ...`: resolve the network, the
operator and the addresses from settings + state, then call the deploy/proxy functions."""
from __future__ import annotations

import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..polymarket.addresses import chain_contracts
from ..settings import Settings, checksum_address
from ..state import State
from .accounts import operator_account, trading_wallets, worker_accounts
from .deploy import addresses, contract, deploy_executor, deploy_factory
from .lanes import TxLane
from .network import ChainContext, connect_network, normalize
from .proxies import (ZERO, create_proxy, erc20, factory_of, fund_pusd_from_whale, proxy_balances, usd,
                      withdraw)
from .roles import plan as role_plan


def _address(value: str, option: str) -> str:
    try:
        return checksum_address(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def targets_and_spenders(ctx: ChainContext, settings: Settings) -> tuple[list[str], list[str]]:
    """Target allowlist (collateral + CTF) and exchange spenders for this chain."""
    c = chain_contracts(ctx.chain_id, ctx.world if ctx.is_local else None, settings)
    return c.targets, list(c.spenders)


def collateral_and_ctf(ctx: ChainContext, settings: Settings) -> tuple[str, str]:
    """Collateral and CTF addresses on this chain."""
    c = chain_contracts(ctx.chain_id, ctx.world if ctx.is_local else None, settings)
    return c.collateral, c.ctf


def deploy_executor_op(settings: Settings, state: State, network: str | None, *, workers: int | None,
                       force: bool, dry_run: bool):
    """Deploy (or report) the Executor with the worker fleet (each signer with its deposit wallet) and allowlists.
    The wallets themselves (creation, approvals, float) are `fleet setup` (runbook/fleet.py), which
    `copytrade deploy executor` runs right after this."""
    ctx = connect_network(settings, state, network)
    lane = TxLane(ctx.w3, operator_account(settings))
    targets, _ = targets_and_spenders(ctx, settings)
    fleet = [a.address for a in worker_accounts(settings, workers)]
    wallets = trading_wallets(fleet, ctx.world, is_local=ctx.is_local)
    report = deploy_executor(ctx.w3, state, ctx.network, lane, workers=fleet, targets=targets, wallets=wallets,
                             force=force, dry_run=dry_run, roles=role_plan(settings, lane.address, ctx.is_local))
    if not dry_run:
        write_addresses_file(settings, state, ctx.network)
    return report


def deploy_factory_op(settings: Settings, state: State, network: str | None, *, force: bool, dry_run: bool):
    """Deploy (or report) Treasury + ProxyFactory bound to the recorded Executor."""
    ctx = connect_network(settings, state, network)
    lane = TxLane(ctx.w3, operator_account(settings))
    targets, _ = targets_and_spenders(ctx, settings)
    report = deploy_factory(ctx.w3, state, ctx.network, lane, targets=targets, force=force, dry_run=dry_run,
                            executor=settings.executor_address,
                            roles=role_plan(settings, lane.address, ctx.is_local))
    if not dry_run:
        write_addresses_file(settings, state, ctx.network)
    return report


def addresses_op(settings: Settings, state: State, network: str | None) -> dict[str, Any]:
    """What is deployed where on a network (no node needed: read from state)."""
    name, chain_id, is_local = normalize(network, settings)
    addrs = addresses(state, name)
    collateral, pusd, ctf = settings.usdc_address, settings.pusd_address, settings.ctf_address
    return {"network": name, "chain_id": chain_id, "collateral": collateral, "pusd": pusd, "ctf": ctf,
            "contracts": addrs, "deployments": [d.__dict__ for d in state.list_deployments(name)]}


def write_addresses_file(settings: Settings, state: State, network: str) -> Path:
    """Refresh $COPYTRADE_HOME/deployed-addresses.json (all networks)."""
    path = settings.home / "deployed-addresses.json"
    data = {}
    for net in sorted({d.network for d in state.list_deployments()}):
        data[net] = addresses(state, net)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(data, indent=2) + "\n")
    return path


PRIVATE_MODE = 0o600  # like the state file: addresses, keys and URLs are nobody else's business


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, readable and writable by its owner only (0600) from the start."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # NOTE: a tmp left by an older run may exist with other bits
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def parse_usd(value: str) -> int:
    """'12.5' -> 12_500_000 micro-USDC; one-line error otherwise."""
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise UsageError(f"amount {value!r} is not a number (e.g. --amount 1000)") from None
    if d <= 0 or d.as_tuple().exponent < -6:
        raise UsageError(f"amount {value!r} must be positive with at most 6 decimals (e.g. --amount 1000)")
    return int(d * 10**6)


def proxy_create_op(settings: Settings, state: State, network: str | None, owner: str | None) -> dict[str, Any]:
    """Create the proxy of `owner` (default: the operator) on the recorded factory."""
    ctx = connect_network(settings, state, network)
    op = operator_account(settings)
    owner = _address(owner, "--owner") if owner else op.address
    factory = factory_of(ctx.w3, state, ctx.network, settings.proxy_factory_address)
    address, tx = create_proxy(ctx.w3, state, ctx.network, TxLane(ctx.w3, op), factory, owner)
    return {"network": ctx.network, "owner": owner, "proxy": address, "factory": factory, "tx": tx,
            "created": tx is not None}


def proxy_fund_op(settings: Settings, state: State, network: str | None, proxy: str | None, amount: str) -> dict[str, Any]:
    """On the fork: fund a proxy (default: the operator's) with collateral from the whale."""
    ctx = connect_network(settings, state, network)
    if not ctx.is_local:
        raise UsageError("`proxy fund` impersonates the whale and only works on the local fork; on a live network "
                         "the owner deposits with a normal transfer")
    micro = parse_usd(amount)
    target = _proxy_or_operator(settings, state, ctx, proxy)
    tx = fund_pusd_from_whale(ctx.w3, ctx.world, target, micro)
    bal = erc20(ctx.w3, ctx.world.exchange_collateral).functions.balanceOf(target).call()
    return {"proxy": target, "funded_micro": micro, "balance_micro": bal, "tx": tx}


def _proxy_or_operator(settings: Settings, state: State, ctx: ChainContext, proxy: str | None) -> str:
    if proxy:
        address = _address(proxy, "--proxy")
        f = factory_of(ctx.w3, state, ctx.network, settings.proxy_factory_address)
        if not contract(ctx.w3, "ProxyFactory", f).functions.isProxy(address).call():
            raise UsageError(f"{address} is not a proxy of the factory {f}")
        return address
    f = factory_of(ctx.w3, state, ctx.network, settings.proxy_factory_address)
    op = operator_account(settings).address
    address = contract(ctx.w3, "ProxyFactory", f).functions.proxyOf(op).call()
    if address == ZERO:
        raise UsageError(f"the operator {op} has no proxy yet: run `copytrade proxy create`")
    return address


def proxy_list_op(settings: Settings, state: State, network: str | None) -> list[dict[str, Any]]:
    """Every recorded proxy with its collateral balance and positions on known markets."""
    ctx = connect_network(settings, state, network)
    collateral, ctf = collateral_and_ctf(ctx, settings)
    token_ids = [int(t) for m in (ctx.world.markets if ctx.world else []) for t in m.token_ids]
    out = []
    for p in state.list_proxies(ctx.network):
        b = proxy_balances(ctx.w3, p.address, collateral, ctf, token_ids)
        out.append({"proxy": p.address, "owner": p.owner, "factory": p.factory, "status": p.status,
                    "collateral_usdc": usd(b["collateral"]), "collateral_micro": b["collateral"],
                    "positions": b["positions"]})
    return out


def proxy_withdraw_op(settings: Settings, state: State, network: str | None, proxy: str | None,
                      amount: str | None) -> dict[str, Any]:
    """The owner (the operator account) withdraws collateral from their proxy."""
    ctx = connect_network(settings, state, network)
    collateral, _ = collateral_and_ctf(ctx, settings)
    target = _proxy_or_operator(settings, state, ctx, proxy)
    micro = parse_usd(amount) if amount else None
    tx = withdraw(ctx.w3, TxLane(ctx.w3, operator_account(settings)), target, collateral, micro)
    return {"proxy": target, "tx": tx,
            "balance_micro": erc20(ctx.w3, collateral).functions.balanceOf(target).call()}
