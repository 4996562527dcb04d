"""`copytrade jobs list|show|signals|debts`: the journal."""
from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOpt, get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
          limit: Annotated[int, typer.Option("--limit", help="Most recent N.")] = 50, json_: JsonOpt = False):
    """Recent jobs (one per fill x follower) with status and reason.

    Example: copytrade jobs list --status skipped
    """
    c = get_ctx(ctx, json_)
    rows = c.state.list_jobs(status=status, limit=limit)
    c.out.result(rows, lambda: c.out.table(
        f"Jobs ({', '.join(f'{k} {v}' for k, v in c.state.job_counts().items()) or 'none'})",
        ["id", "status", "side", "follower", "usd", "shares", "flow", "group", "reason"],
        [[r["id"], r["status"], r["side"], r["follower"], r["usd"], r["shares"], r["flow"], (r["group_id"] or "")[:8],
          (r["reason"] or "")[:60]] for r in rows]))


@app.command("show")
@handle_errors
def show(ctx: typer.Context, job_id: Annotated[int, typer.Argument(help="Job id.")], json_: JsonOpt = False):
    """One job with its signal, execution group and every step (tx hashes, timings).

    Example: copytrade jobs show 1
    """
    from ..errors import UsageError

    c = get_ctx(ctx, json_)
    job = c.state.get_job(job_id)
    if job is None:
        raise UsageError(f"no job {job_id} (see `copytrade jobs list`)")
    group = c.state.get_group(job["group_id"]) if job["group_id"] else None
    steps = c.state.steps(job["group_id"]) if job["group_id"] else []
    data = {"job": job, "signal": c.state.get_signal(job["fill_key"]), "group": group, "steps": steps}

    def human():
        c.out.line(f"Job {job_id}: {job['status']} {job['side']} for {job['follower']} (flow {job['flow']})"
                   + (f" — {job['reason']}" if job["reason"] else ""))
        c.out.line(f"Fill: {job['fill_key']}")
        if group:
            c.out.line(f"Group {group['group_id']}: stage {group['stage']}, worker {group['worker']}, "
                       f"order {group['order_id'] or '-'}")
        c.out.table("Steps", ["step", "status", "tx", "ms", "detail"],
                    [[s["step"], s["status"], s["tx_hash"] or "", f"{s['ms']:.0f}" if s["ms"] else "", s["detail"] or ""]
                     for s in steps])

    c.out.result(data, human)


@app.command("debts")
@handle_errors
def debts(ctx: typer.Context, json_: JsonOpt = False):
    """Smart Buffer debts not yet reimbursed.

    Example: copytrade jobs debts
    """
    c = get_ctx(ctx, json_)
    rows = c.state.open_debts()
    c.out.result(rows, lambda: c.out.table("Open debts", ["id", "proxy", "worker", "USDC", "since"],
                                           [[d["id"], d["proxy"], d["worker"], d["amount"] / 1e6, d["created_at"]]
                                            for d in rows]))
