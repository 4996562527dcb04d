"""`copytrade leaders report` and `copytrade backtest`: whom to copy, and what the followers would have made."""
from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .common import JsonOpt, NetworkOpt, get_ctx, handle_errors
from .options import SellMode, Sizing

app = typer.Typer(no_args_is_help=True)

SinceOpt = Annotated[str | None, typer.Option("--since", help="Only what happened from this UTC date on (YYYY-MM-DD or epoch seconds).")]
HtmlOpt = Annotated[Path | None, typer.Option("--html", help="Also write one self-contained HTML report with plots to this file.")]
FromFileOpt = Annotated[Path | None, typer.Option("--from-file", help="Read the history from this JSON file (as --save writes it) instead of the APIs.")]
SaveOpt = Annotated[Path | None, typer.Option("--save", help="Write the downloaded history (the JSON the APIs returned) to this file.")]


def parse_since(value: str | None) -> int | None:
    """--since as epoch seconds; a bad value is one line naming the option."""
    if value in (None, ""):
        return None
    if value.isdigit():
        return int(value)
    try:
        d = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise UsageError(f"--since {value!r}: use a date YYYY-MM-DD (UTC) or epoch seconds") from None
    return int(d.timestamp())


def endpoints(c, network: str | None) -> tuple[str, str, str, bool]:
    """(data API, Gamma, CLOB) URLs: the settings', else the fork's local servers, else Polymarket's."""
    from ..analysis.fetch import DATA_URL, GAMMA_URL

    name = network or c.settings.network
    local = name.endswith(":local")
    rec = c.state.get_node() if local else None
    if local and not (rec and rec.clob_url) and not (c.settings.data_api_url and c.settings.gamma_url):
        raise UsageError("no local Data API: `copytrade fork up` starts it (or pass --from-file, or set "
                         "COPYTRADE_DATA_API_URL and COPYTRADE_GAMMA_URL)")
    base = rec.clob_url if rec and rec.clob_url else None
    data = c.settings.data_api_url or base or DATA_URL
    gamma = c.settings.gamma_url or base or GAMMA_URL
    clob = c.settings.clob_url or base or "https://clob.polymarket.com"
    return data, gamma, clob, local


def load_history(c, address: str, since: int | None, from_file: Path | None, network: str | None):
    """The history from the file, or downloaded with progress on stderr."""
    from ..analysis.fetch import fetch_history
    from ..analysis.history import load_file
    from ..settings import checksum_address

    try:
        address = checksum_address(address)
    except ValueError as exc:
        raise UsageError(f"ADDRESS: {exc}") from None
    if from_file is not None:
        h = load_file(from_file, since)
        h.user = h.user or address
        return h
    data, gamma, _clob, _local = endpoints(c, network)

    def progress(what: str, pages: int, rows: int) -> None:
        sys.stderr.write(f"downloading {what}: page {pages}, {rows} rows\n")
        sys.stderr.flush()

    return fetch_history(address, data_url=data, gamma_url=gamma, since=since, progress=progress)


def _money(v) -> str:
    return "-" if v is None else f"{Decimal(v):,.2f}"


@app.command("report")
@handle_errors
def report(ctx: typer.Context, address: Annotated[str, typer.Argument(help="The leader's wallet (proxy_wallet).")],
           since: SinceOpt = None, html: HtmlOpt = None, from_file: FromFileOpt = None, save: SaveOpt = None,
           network: NetworkOpt = None, json_: JsonOpt = False):
    """A leader's record: PnL (realized, unrealized), win rate with a 95% interval, volume, sizes, maker/taker,
    market kinds and categories, holding times, the best market's share of the PnL.

    Example: copytrade leaders report 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --since 2026-01-01 --html r.html
    """
    from ..analysis.report import build_report

    c = get_ctx(ctx, json_)
    h = load_history(c, address, parse_since(since), from_file, network)
    if save is not None:
        h.save(save)
    r = build_report(h)
    if html is not None:
        from ..analysis.html import report_html

        html.write_text(report_html(r))

    def human():
        o = c.out
        wr = r["win_rate"]
        ci = r["win_rate_ci95"]
        o.line(f"Leader {r['leader']}: {r['trades']} trades ({r['buys']} buys, {r['sells']} sells), "
               f"{r['redeems']} redeems, volume {_money(r['volume'])} USD in {r['markets_traded']} markets")
        o.line(f"PnL {_money(r['pnl'])} USD: realized {_money(r['realized_pnl'])}, unrealized "
               f"{_money(r['unrealized_pnl'])}")
        o.line("Win rate " + ("-" if wr is None else f"{wr:.1%} ({r['wins']}/{r['markets_decided']} markets decided; "
                                                     f"95% CI {ci[0]:.1%}-{ci[1]:.1%})"))
        s = r["size_usd"]
        if s:
            o.line(f"Size USD: min {_money(s['min'])}, median {_money(s['median'])}, mean {_money(s['mean'])}, "
                   f"max {_money(s['max'])}")
        mt = r["maker_taker"]
        share = "-" if mt["taker_share"] is None else f"{mt['taker_share']:.0%}"
        o.line(f"Maker/taker: {mt['taker']} taker, {mt['maker']} maker ({share} taker)")
        hs = r["holding_s"]
        if hs["median"] is not None:
            o.line(f"Holding: median {hs['median'] / 3600:.1f} h over {hs['round_trips']} round trips; "
                   f"{hs['open_positions']} positions open")
        if r["best_market_share"] is not None:
            o.line(f"Best market: {r['best_market']['title'] or r['best_market']['condition_id']} made "
                   f"{_money(r['best_market']['pnl'])} USD, {r['best_market_share']:.0%} of the PnL")
        o.table("Categories", ["category", "trades", "volume"],
                [[k, v["trades"], _money(v["volume"])] for k, v in r["categories"].items()])
        o.table("Markets", ["market", "kind", "category", "status", "trades", "PnL"],
                [[(m["title"] or m["condition_id"])[:40], m["kind"], m["category"], m["status"], m["trades"],
                  _money(m["pnl"])] for m in r["per_market"]])
        if html is not None:
            o.line(f"HTML report: {html}")

    c.out.result(r, human)


def backtest(ctx: typer.Context,
             leader: Annotated[str, typer.Option("--leader", help="The leader's wallet to replay.")],
             follow_id: Annotated[int | None, typer.Option("--follow", help="Use this follow config (its sizing, caps, filters; see `follow list`).")] = None,
             sizing: Annotated[Sizing, typer.Option("--sizing", help="Sizing without --follow.")] = Sizing.FIXED,
             amount: Annotated[str, typer.Option("--amount", help="USD (fixed), multiple of the leader's notional (proportional) or percent of the balance.")] = "10",
             min_usd: Annotated[str | None, typer.Option("--min-usd", help="Skip copies below this.")] = None,
             max_usd: Annotated[str | None, typer.Option("--max-usd", help="Cap each copy at this.")] = None,
             max_slippage: Annotated[str, typer.Option("--max-slippage", help="Worst price vs the leader's, as a fraction.")] = "0.05",
             sells: Annotated[SellMode, typer.Option("--sells", help="Copy the leader's sells proportionally or ignore them.")] = SellMode.PROPORTIONAL,
             balance: Annotated[str, typer.Option("--balance", help="The follower's starting collateral in USD.")] = "1000",
             latency_ms: Annotated[int, typer.Option("--latency-ms", min=0, max=600_000, help="Delay between the leader's fill and the copy (slippage model: docs/backtest.md).")] = 0,
             no_fees: Annotated[bool, typer.Option("--no-fees", help="Charge no taker fees.")] = False,
             book: Annotated[str, typer.Option("--book", help="flat: fill at the reference price; clob: walk the CLOB's current book of each token (or the file's recorded books).")] = "flat",
             since: SinceOpt = None, html: HtmlOpt = None, from_file: FromFileOpt = None, save: SaveOpt = None,
             network: NetworkOpt = None, json_: JsonOpt = False):
    """Replay a leader's history through the supervisor's own decide / size / guardrail code: what a follower
    would have spent, received, redeemed and made, the copies skipped by reason, and the leader beside it.

    Example: copytrade backtest --leader 0x7099...79C8 --sizing fixed --amount 10 --latency-ms 500 --html bt.html
    """
    from ..analysis.backtest import Options, run_backtest
    from ..supervisor.decide import validate_follow

    c = get_ctx(ctx, json_)
    if book not in ("flat", "clob"):
        raise UsageError(f"--book {book!r}: use flat or clob")
    try:
        bal = Decimal(balance)
        if not bal.is_finite() or bal < 0 or bal > Decimal(10) ** 9:
            raise ValueError
    except (ArithmeticError, ValueError):
        raise UsageError(f"--balance {balance!r} must be a number between 0 and 1e9 (e.g. --balance 1000)") from None
    if follow_id is not None:
        f = c.state.get_follow(follow_id)
        if f is None:
            raise UsageError(f"no follow #{follow_id} (see `copytrade follow list`)")
    else:
        f = validate_follow(follower="0x000000000000000000000000000000000000dEaD", leader=leader, sizing=str(sizing),
                            amount=amount, min_usd=min_usd, max_usd=max_usd, max_slippage=max_slippage,
                            sell_mode=str(sells))
    h = load_history(c, leader, parse_since(since), from_file, network)
    books = None
    if book == "clob":
        books = _book_source(c, h, network, from_file is not None)
    if save is not None:
        h.save(save)
    r = run_backtest(h, f, c.settings, Options(latency_ms=latency_ms, fees=not no_fees, balance_usd=bal, books=books))
    if html is not None:
        from ..analysis.html import backtest_html

        html.write_text(backtest_html(r))

    def human():
        o = c.out
        cmp_ = r["comparison"]
        o.line(f"Backtest of {r['leader']}: {r['copies']} copies of {r['leader_fills']} fills, {r['skipped']} skipped "
               f"(latency {r['latency_ms']} ms, fees {'on' if r['fees'] else 'off'}, book {r['book']})")
        o.line(f"Follower: spent {_money(r['spent'])}, received {_money(r['received'])}, redeemed "
               f"{_money(r['redeemed'])}, fees {_money(r['fees_paid'])}, made {_money(r['made'])} USD "
               f"(realized {_money(r['realized_pnl'])}, unrealized {_money(r['unrealized_pnl'])})")
        o.line(f"Leader: made {_money(cmp_['leader_made'])} USD on {_money(r['leader_totals']['spent'])} spent")
        if r["skips_by_reason"]:
            o.table("Skips by reason", ["reason", "copies"], [[k, v] for k, v in r["skips_by_reason"].items()])
        else:
            o.line("Skips: none")
        if html is not None:
            o.line(f"HTML report: {html}")

    c.out.result(r, human)


def _book_source(c, h, network, from_file: bool):
    """Books: the file's recorded ones (`books` in the history JSON), else GET /book from the CLOB (once a token)."""
    recorded = h.raw.get("books") if isinstance(h.raw.get("books"), dict) else None
    if recorded is not None or from_file:
        return lambda tok: (recorded or {}).get(tok)
    import httpx

    _data, _gamma, clob, _local = endpoints(c, network)
    saved: dict = {}
    h.raw["books"] = saved

    def get(tok: str):
        try:
            resp = httpx.get(clob.rstrip("/") + "/book", params={"token_id": tok}, timeout=10)
            body = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            body = None
        saved[tok] = body
        return body

    return get
