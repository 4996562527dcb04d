"""`copytrade jobs list|show|signals|debts`: the journal."""
from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UsageError
from .common import JsonOpt, get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
          limit: Annotated[int, typer.Option("--limit", help="Most recent N.")] = 50, json_: JsonOpt = False):
    """Recent jobs (one per fill x follower) with status and reason.

    Example: copytrade jobs list --status skipped
    """
    from ..supervisor.execute.dryrun import DRY_STATUSES  # `supervise --dry-run` rows, listed apart

    c = get_ctx(ctx, json_)
    rows = c.state.list_jobs(status=status, limit=limit)
    for r in rows:
        r["dry_run"] = r["status"] in DRY_STATUSES
    counts = c.state.job_counts()
    real = [r for r in rows if not r["dry_run"]]
    dry = [r for r in rows if r["dry_run"]]

    def human():
        c.out.table(
            f"Jobs ({', '.join(f'{k} {v}' for k, v in counts.items() if k not in DRY_STATUSES) or 'none'})",
            ["id", "status", "side", "follower", "usd", "shares", "flow", "group", "reason"],
            [[r["id"], r["status"], r["side"], r["follower"], r["usd"], r["shares"], r["flow"],
              (r["group_id"] or "")[:8], (r["reason"] or "")[:60]] for r in real])
        if dry:
            c.out.table(f"Dry-run copies, nothing executed ({', '.join(f'{k} {v}' for k, v in counts.items() if k in DRY_STATUSES)})",
                        ["id", "status", "side", "follower", "usd", "shares", "price", "reason"],
                        [[r["id"], r["status"], r["side"], r["follower"], r["usd"], r["shares"], r["price"],
                          (r["reason"] or "")[:70]] for r in dry])

    c.out.result(rows, human)


@app.command("show")
@handle_errors
def show(ctx: typer.Context, job_id: Annotated[int, typer.Argument(help="Job id.")], json_: JsonOpt = False):
    """One job with its signal, execution group and every step (tx hashes, timings).

    Example: copytrade jobs show 1
    """
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


dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter stream of the shared (Redis) queue.")
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
@handle_errors
def dlq_list(ctx: typer.Context, limit: Annotated[int, typer.Option("--limit", help="At most N entries.")] = 100,
             json_: JsonOpt = False):
    """Groups moved to the dead-letter stream after SUPERVISOR_MAX_DELIVERIES attempts.

    Example: copytrade jobs dlq list
    """
    from ..supervisor.coordination.redis_ops import dlq_list as list_dead

    c = get_ctx(ctx, json_)
    rows = list_dead(c.settings, limit)
    for r in rows:
        g = c.state.get_group(r["gid"]) or {}
        r.update(stage=g.get("stage"), status=g.get("status"), error=g.get("error"))
    c.out.result(rows, lambda: c.out.table(
        f"Dead-lettered groups ({len(rows)})", ["entry", "group", "attempts", "stage", "reason"],
        [[r["entry"], r["gid"], r.get("attempts"), r.get("stage"), (r.get("reason") or "")[:70]] for r in rows]))


@dlq_app.command("retry")
@handle_errors
def dlq_retry(ctx: typer.Context,
              entries: Annotated[list[str] | None, typer.Argument(help="Entry ids from `dlq list` (default: all).")] = None,
              json_: JsonOpt = False):
    """Put dead-lettered groups back on the shared queue (they resume from their journalled stage).

    Example: copytrade jobs dlq retry 1767225600000-0
    """
    from ..supervisor.coordination.redis_ops import dlq_retry as retry_dead

    c = get_ctx(ctx, json_)
    gids = retry_dead(c.settings, c.state, entries or None)
    c.out.result({"requeued": gids}, lambda: c.out.line(f"Re-queued {len(gids)} group(s)"
                                                         + (": " + ", ".join(gids) if gids else "")))
