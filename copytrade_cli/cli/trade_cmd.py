"""`copytrade trade impersonate|batch`: make the leader trade on the fork."""
from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UsageError
from .common import JsonOpt, get_ctx, handle_errors
from .options import TradeSide, TradeSideOpt

app = typer.Typer(no_args_is_help=True)
LeaderOpt = Annotated[str | None, typer.Option("--leader", help="Leader address (default: the seed's 0x7099…79C8).")]
MarketOpt = Annotated[int, typer.Option("--market", help="Market index on the fork (see fork status).")]
UsdOpt = Annotated[float, typer.Option("--usd", help="Notional in USDC.")]
OutcomeOpt = Annotated[str, typer.Option("--outcome", help="Yes or No.")]
PriceOpt = Annotated[str, typer.Option("--price", help="Fill price.")]
PendingOpt = Annotated[int, typer.Option("--pending-ms", help="How long the tx stays pending before it is mined.")]


def _render(c, res) -> None:
    data = {"tx_hash": res.tx_hash, "block": res.block_number, "fills": [f.to_dict() for f in res.fills]}

    def human():
        c.out.line(f"✅ Signal Sent! tx {res.tx_hash} (block {res.block_number}, {len(res.fills)} fill(s))")
        for f in res.fills:
            c.out.line(f"   {f.leader} {f.side} {f.shares:.2f} shares @ {f.price} token {f.token_id[:12]}…")

    c.out.result(data, human)


def _chain(c):
    from ..chain.network import connect_network

    chain = connect_network(c.settings, c.state)
    if not chain.is_local or chain.world is None:
        raise UsageError("trade impersonation only works on the local fork with Polymarket planted (`copytrade fork up`)")
    return chain


@app.command("impersonate")
@handle_errors
def impersonate(ctx: typer.Context, leader: LeaderOpt = None, market: MarketOpt = 0, side: TradeSideOpt = TradeSide.BUY,
                usd: UsdOpt = 10.0, outcome: OutcomeOpt = "Yes", price: PriceOpt = "0.5", pending_ms: PendingOpt = 300,
                json_: JsonOpt = False):
    """The leader trades on the fork: a pending exchange fill, then mined; prints `Signal Sent!`.

    Example: copytrade trade impersonate --side BUY --usd 10
    """
    from ..localworld.trades import leader_trade

    c = get_ctx(ctx, json_)
    chain = _chain(c)
    _render(c, leader_trade(chain.w3, chain.world, leader=leader, market_index=market, outcome=outcome,
                            side=side.value, usd=usd, price=price, pending_ms=pending_ms))


@app.command("batch")
@handle_errors
def batch(ctx: typer.Context, count: Annotated[int, typer.Option("--count", help="Fills in the one transaction.")] = 3,
          leader: Annotated[list[str] | None, typer.Option("--leader", help="Leader(s); repeat for several.")] = None,
          side: TradeSideOpt = TradeSide.BUY, usd: UsdOpt = 10.0, outcome: OutcomeOpt = "Yes", price: PriceOpt = "0.5",
          pending_ms: PendingOpt = 300, json_: JsonOpt = False):
    """N leader fills (several leaders/markets) in ONE transaction and ONE block.

    Example: copytrade trade batch --count 3
    """
    from ..localworld.trades import leader_batch

    c = get_ctx(ctx, json_)
    chain = _chain(c)
    _render(c, leader_batch(chain.w3, chain.world, count=count, leaders=leader or None, side=side.value, usd=usd,
                            outcome=outcome, price=price, pending_ms=pending_ms))
