"""`copytrade demo`."""
from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from .common import JsonOpt, get_ctx, handle_errors


@handle_errors
def demo(ctx: typer.Context, keep: Annotated[bool, typer.Option("--keep", help="Leave the fork running afterwards.")] = False,
         json_: JsonOpt = False):
    """The whole runbook in one command on the embedded defaults, then tear down.

    Exit 0 only if the copies really happened on chain.

    Example: copytrade demo
    """
    from ..runbook.demo import run_demo

    c = get_ctx(ctx, json_)
    rep = run_demo(c.settings, c.state, say=c.out.line, keep=keep)

    def human():
        c.out.table("Followers after the copy", ["follower", "flow", "pUSD before", "pUSD after", "spent",
                                                 "shares before", "shares after"],
                    [[r["follower"], r["flow"], r["usdc_before"], r["usdc_after"], r["spent"], r["shares_before"],
                      r["shares_after"]] for r in rep.followers])
        c.out.line(f"Demo {'PASSED' if rep.ok else 'FAILED'} in {rep.seconds:.1f}s (fork up {rep.fork_seconds:.1f}s)")
        for p in rep.problems:
            c.out.line(f"  problem: {p}")

    c.out.result(asdict(rep), human)
    if not rep.ok:
        raise typer.Exit(1)
