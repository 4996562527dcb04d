"""`copytrade market list`."""
from __future__ import annotations

import typer

from .common import JsonOpt, get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)


def _tick(row: dict) -> str:
    changes = ", ".join(f"{c['tick_size']} after {c['after_s']}s" for c in row["tick_changes"])
    return f"{row['tick_size']} (then {changes})" if changes else row["tick_size"]


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, json_: JsonOpt = False):
    """List the markets planted on the local fork: tick, neg-risk, fee category and rate, minimum size, token ids.

    Example: copytrade market list --json
    """
    from ..localworld.market_list import recorded_markets

    c = get_ctx(ctx, json_)
    rows = recorded_markets(c.state)

    def human():
        c.out.table(f"{len(rows)} market(s)", ["slug", "condition id", "kind", "tick", "category", "fee rate",
                                               "min size", "token ids"],
                    [[r["slug"], r["condition_id"], r["kind"], _tick(r), r["category"],
                      f"{r['fee_rate']:g}" + (f" (e={r['fee_exponent']})" if r["fee_exponent"] != 1 else ""),
                      r["min_order_size"], " ".join(r["token_ids"])] for r in rows])

    c.out.result(rows, human)
