"""One self-contained HTML file per report: tables and matplotlib plots as inline SVG (no script, no external
resource), so it opens anywhere, offline. matplotlib is imported here only (the Agg backend, no display)."""
from __future__ import annotations

import datetime as dt
import html as _h
import io
from decimal import Decimal
from typing import Any

CSS = ("body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}"
       "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
       "th{background:#f3f3f3}.num{text-align:right}h1{font-size:22px}h2{font-size:17px;margin-top:28px}"
       ".plots svg{max-width:100%;height:auto}")


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _times(series: list) -> tuple[list, list[float]]:
    xs = [dt.datetime.fromtimestamp(int(t), dt.timezone.utc) for t, _v in series]
    return xs, [float(v) for _t, v in series]


def equity_plot(curves: dict[str, list]) -> str:
    """Cumulative realized PnL over time, one line per curve."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for name, series in curves.items():
        if series:
            xs, ys = _times(series)
            ax.plot(xs, ys, drawstyle="steps-post", marker="o", markersize=4, label=name)
    ax.axhline(0, color="#999", linewidth=0.8)
    ax.set_title("Equity: cumulative realized PnL (USD)")
    ax.legend(loc="best")
    fig.autofmt_xdate()
    return _svg(fig)


def bar_plot(labels: list[str], values: list[float], title: str, horizontal: bool = True,
             signed: bool = True) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, max(2.2, 0.35 * len(labels) + 1)))
    colors = ["#2a9d4b" if v >= 0 else "#c0392b" for v in values] if signed else ["#4a6fa5"] * len(values)
    if horizontal:
        ax.barh(range(len(labels)), values, color=colors)
        ax.set_yticks(range(len(labels)), [lb[:50] for lb in labels])
        ax.invert_yaxis()
    else:
        ax.bar(range(len(labels)), values, color=colors)
        ax.set_xticks(range(len(labels)), labels)
    ax.set_title(title)
    return _svg(fig)


def _table(cols: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_h.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_h.escape('' if v is None else str(v))}</td>" for v in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, parts: list[str]) -> str:
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_h.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{_h.escape(title)}</h1>{''.join(parts)}</body></html>\n")


def _m(v) -> str:
    return "-" if v is None else f"{Decimal(v):,.2f}"


def report_html(r: dict[str, Any]) -> str:
    """The leader report as HTML: key figures, equity, PnL per market, categories, markets."""
    ci = r.get("win_rate_ci95")
    wr = "-" if r["win_rate"] is None else f"{r['win_rate']:.1%} (95% CI {ci[0]:.1%}-{ci[1]:.1%})"
    figures = _table(["figure", "value"], [
        ["trades", r["trades"]], ["volume USD", _m(r["volume"])], ["PnL USD", _m(r["pnl"])],
        ["realized", _m(r["realized_pnl"])], ["unrealized", _m(r["unrealized_pnl"])], ["win rate", wr],
        ["taker share", "-" if r["maker_taker"]["taker_share"] is None else f"{r['maker_taker']['taker_share']:.0%}"],
        ["best market share", "-" if r["best_market_share"] is None else f"{r['best_market_share']:.0%}"]])
    pm = r["per_market"]
    parts = [f"<p>Leader {_h.escape(str(r['leader']))}</p>", figures, "<div class=\"plots\">",
             "<h2>Equity</h2>", equity_plot({"leader": r["equity"]})]
    if pm:
        parts += ["<h2>PnL per market</h2>", bar_plot([m["title"] or m["condition_id"][:12] for m in pm],
                                                      [float(m["pnl"]) for m in pm], "PnL per market (USD)")]
    parts.append("</div><h2>Markets</h2>")
    parts.append(_table(["market", "kind", "category", "status", "trades", "PnL"],
                        [[m["title"] or m["condition_id"], m["kind"], m["category"], m["status"], m["trades"],
                          _m(m["pnl"])] for m in pm]))
    parts.append("<h2>Categories</h2>" + _table(["category", "trades", "volume"], [
        [k, v["trades"], _m(v["volume"])] for k, v in r["categories"].items()]))
    return _page("Leader report", parts)


def backtest_html(r: dict[str, Any]) -> str:
    """The backtest as HTML: leader vs follower equity, follower PnL per market, skips by reason."""
    c = r["comparison"]
    figures = _table(["figure", "follower", "leader"], [
        ["spent", _m(r["spent"]), _m(r["leader_totals"]["spent"])],
        ["received", _m(r["received"]), _m(r["leader_totals"]["received"])],
        ["redeemed", _m(r["redeemed"]), _m(r["leader_totals"]["redeemed"])],
        ["fees", _m(r["fees_paid"]), "-"], ["made", _m(c["follower_made"]), _m(c["leader_made"])],
        ["copies / fills", f"{r['copies']} / {r['leader_fills']}", ""]])
    parts = [f"<p>Leader {_h.escape(str(r['leader']))}; latency {r['latency_ms']} ms; fees "
             f"{'on' if r['fees'] else 'off'}; book {_h.escape(r['book'])}</p>", figures, "<div class=\"plots\">",
             "<h2>Equity</h2>", equity_plot({"leader": r["leader_equity"], "follower": r["equity"]})]
    pm = r["per_market"]
    if pm:
        parts += ["<h2>Follower PnL per market</h2>",
                  bar_plot([k[:14] for k in pm], [float(v) for v in pm.values()], "Follower PnL per market (USD)")]
    skips = r["skips_by_reason"]
    if skips:
        parts += ["<h2>Skips by reason</h2>", bar_plot(list(skips), [float(v) for v in skips.values()],
                                                       "Copies skipped, by reason", signed=False)]
    parts.append("</div><h2>Skips</h2>" + _table(["reason", "copies"], [[k, v] for k, v in skips.items()]))
    return _page("Copy backtest", parts)
