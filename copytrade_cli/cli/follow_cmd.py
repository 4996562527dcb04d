"""`copytrade follow add|list|remove|pause|resume` and `copytrade seed`."""
from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from .common import JsonOpt, NetworkOpt, get_ctx, handle_errors
from .options import Flow, FlowOpt, SellMode, SellsOpt, SideFilter, SideFilterOpt, Sizing, SizingOpt

app = typer.Typer(no_args_is_help=True)


def _show(c, f) -> None:
    c.out.result(asdict(f), lambda: c.out.line(
        f"Follow #{f.id}: {f.follower} copies {f.leader} ({f.sizing} {f.amount}, flow {f.flow}, "
        f"sells {f.sell_mode}, side {f.side_filter}, status {f.status})"))


@app.command("add")
@handle_errors
def add(ctx: typer.Context,
        follower: Annotated[str, typer.Option("--follower", help="Follower's proxy address.")],
        leader: Annotated[str, typer.Option("--leader", help="Trader to copy.")],
        sizing: SizingOpt = Sizing.FIXED,
        amount: Annotated[str, typer.Option("--amount", help="USD, scale or percent, by --sizing.")] = "10",
        min_usd: Annotated[str | None, typer.Option("--min-usd", help="Skip copies smaller than this.")] = None,
        max_usd: Annotated[str | None, typer.Option("--max-usd", help="Cap each copy at this.")] = None,
        max_slippage: Annotated[str, typer.Option("--max-slippage", help="Worst price vs the leader's, as a fraction.")] = "0.05",
        sells: SellsOpt = SellMode.PROPORTIONAL,
        side: SideFilterOpt = SideFilter.BOTH,
        min_leader_usd: Annotated[str | None, typer.Option("--min-leader-usd", help="Ignore leader fills below this notional.")] = None,
        max_price: Annotated[str | None, typer.Option("--max-price", help="Ignore leader buys above this price.")] = None,
        flow: FlowOpt = Flow.STANDARD,
        owner: Annotated[str | None, typer.Option("--owner", help="Owner of the proxy (for allowlists).")] = None,
        network: NetworkOpt = None, json_: JsonOpt = False):
    """Add (or update) a follow config.

    The follower must be a proxy of a trusted factory on the network: recorded by `copytrade proxy create`,
    or verified on chain (its factory() is a recorded ProxyFactory that lists it as its owner's proxy).

    Example: copytrade follow add --follower 0xProxy --leader 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --sizing proportional --amount 0.5
    """
    from ..supervisor.configs import add_checked_follow

    c = get_ctx(ctx, json_)
    _show(c, add_checked_follow(c.settings, c.state, network, follower=follower, leader=leader, owner=owner,
                                sizing=sizing.value, amount=amount, min_usd=min_usd, max_usd=max_usd,
                                max_slippage=max_slippage, sell_mode=sells.value, side_filter=side.value,
                                min_leader_usd=min_leader_usd, max_price=max_price, flow=flow.value))


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, json_: JsonOpt = False):
    """List follow configs.

    Example: copytrade follow list
    """
    c = get_ctx(ctx, json_)
    rows = c.state.list_follows()
    c.out.result([asdict(f) for f in rows], lambda: c.out.table(
        "Follow configs", ["id", "follower", "leader", "sizing", "amount", "flow", "sells", "side", "status"],
        [[f.id, f.follower, f.leader, f.sizing, f.amount, f.flow, f.sell_mode, f.side_filter, f.status] for f in rows]))


@app.command("remove")
@handle_errors
def remove(ctx: typer.Context, follow_id: Annotated[int, typer.Argument(help="Follow id (see follow list).")],
           json_: JsonOpt = False):
    """Delete a follow config.

    Example: copytrade follow remove 3
    """
    from ..supervisor.configs import remove as remove_follow

    c = get_ctx(ctx, json_)
    remove_follow(c.state, follow_id)
    c.out.result({"removed": follow_id}, lambda: c.out.line(f"Removed follow #{follow_id}"))


@app.command("pause")
@handle_errors
def pause(ctx: typer.Context, follow_id: Annotated[int, typer.Argument(help="Follow id.")], json_: JsonOpt = False):
    """Pause a follow (the supervisor picks it up at its next config refresh).

    Example: copytrade follow pause 3
    """
    from ..supervisor.configs import set_status

    c = get_ctx(ctx, json_)
    _show(c, set_status(c.state, follow_id, "paused"))


@app.command("resume")
@handle_errors
def resume(ctx: typer.Context, follow_id: Annotated[int, typer.Argument(help="Follow id.")], json_: JsonOpt = False):
    """Resume a paused follow.

    Example: copytrade follow resume 3
    """
    from ..supervisor.configs import set_status

    c = get_ctx(ctx, json_)
    _show(c, set_status(c.state, follow_id, "active"))


@handle_errors
def seed(ctx: typer.Context,
         amount: Annotated[str, typer.Option("--amount", help="Fixed USD per copy.")] = "10",
         flow: FlowOpt = Flow.STANDARD,
         network: NetworkOpt = None, json_: JsonOpt = False):
    """Write the seed's test follow config (the operator's proxy follows 0x7099...79C8).

    The leader is 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, sizing fixed USD.

    Example: copytrade seed
    """
    from ..supervisor.configs import seed as seed_config

    c = get_ctx(ctx, json_)
    _show(c, seed_config(c.settings, c.state, amount=amount, flow=flow.value, network=network))
