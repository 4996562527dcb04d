"""`copytrade proxy create|list|fund|withdraw`."""
from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOpt, NetworkOpt, get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)
ProxyOpt = Annotated[str | None, typer.Option("--proxy", help="Proxy address (default: the operator's proxy).")]


@app.command("create")
@handle_errors
def create(ctx: typer.Context, owner: Annotated[str | None, typer.Option("--owner", help="Owner address (default: the operator).")] = None,
           network: NetworkOpt = None, json_: JsonOpt = False):
    """Create a proxy for an owner on the recorded factory (one per owner; re-running returns it).

    Example: copytrade proxy create --owner 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC
    """
    from ..chain.operations import proxy_create_op

    c = get_ctx(ctx, json_)
    r = proxy_create_op(c.settings, c.state, network, owner)
    c.out.result(r, lambda: c.out.line(f"{'Created' if r['created'] else 'Exists'}: proxy {r['proxy']} of {r['owner']}"
                                       + (f" (tx {r['tx']})" if r["tx"] else "")))


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, network: NetworkOpt = None, json_: JsonOpt = False):
    """Every recorded proxy with collateral and positions.

    Example: copytrade proxy list
    """
    from ..chain.operations import proxy_list_op

    c = get_ctx(ctx, json_)
    rows = proxy_list_op(c.settings, c.state, network)
    c.out.result(rows, lambda: c.out.table("Proxies", ["proxy", "owner", "status", "pUSD", "positions"],
                                           [[r["proxy"], r["owner"], r["status"], r["collateral_usdc"],
                                             ", ".join(f"{t[:8]}…:{a / 1e6:g}" for t, a in r["positions"].items())]
                                            for r in rows]))


@app.command("fund")
@handle_errors
def fund(ctx: typer.Context, amount: Annotated[str, typer.Option("--amount", help="pUSD to add.")] = "1000",
         proxy: ProxyOpt = None, network: NetworkOpt = None, json_: JsonOpt = False):
    """On the fork: fund a proxy with pUSD: the whale's USDC.e wrapped through the CollateralOnramp for it.

    Example: copytrade proxy fund --amount 1000
    """
    from ..chain.operations import proxy_fund_op

    c = get_ctx(ctx, json_)
    r = proxy_fund_op(c.settings, c.state, network, proxy, amount)
    c.out.result(r, lambda: c.out.line(f"Funded {r['proxy']} with {r['funded_micro'] / 1e6:g} pUSD; "
                                       f"balance {r['balance_micro'] / 1e6:g} pUSD (tx {r['tx']})"))


@app.command("withdraw")
@handle_errors
def withdraw(ctx: typer.Context, amount: Annotated[str | None, typer.Option("--amount", help="pUSD to withdraw (default: all).")] = None,
             proxy: ProxyOpt = None, network: NetworkOpt = None, json_: JsonOpt = False):
    """The owner withdraws collateral from their proxy (always allowed, even when paused).

    Example: copytrade proxy withdraw --amount 10
    """
    from ..chain.operations import proxy_withdraw_op

    c = get_ctx(ctx, json_)
    r = proxy_withdraw_op(c.settings, c.state, network, proxy, amount)
    c.out.result(r, lambda: c.out.line(f"Withdrew from {r['proxy']}; balance now {r['balance_micro'] / 1e6:g} pUSD "
                                       f"(tx {r['tx']})"))
