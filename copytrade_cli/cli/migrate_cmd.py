"""`copytrade migrate plan|deploy|proxy|users|deprecate|status`: move users to new contract logic."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .common import DryRunOpt, JsonOpt, NetworkOpt, YesOpt, get_ctx, handle_errors
from .options import ExportFormat, ExportFormatOpt

app = typer.Typer(no_args_is_help=True)


def _confirm_live(c, network: str | None, yes: bool, dry_run: bool, what: str) -> None:
    from ..chain.network import normalize

    name, _, is_local = normalize(network, c.settings)
    if is_local or yes or dry_run:
        return
    typed = typer.prompt(f"`migrate {what}` on {name} sends real transactions. Type the network name to continue")
    if typed.strip() != name:
        raise UsageError("confirmation did not match; nothing changed")


def _render(c, rep) -> None:
    def human():
        title = (f"migrate {rep.step}{' (dry run)' if rep.dry_run else ''}: {rep.network}, generation "
                 f"{rep.from_generation} → {rep.to_generation}")
        if rep.resumed:
            c.out.line(rep.resumed)
        if rep.actions:
            c.out.table(title, ["step", "status", "address", "tx"],
                        [[a.what, a.status, a.address or "", a.tx or ""] for a in rep.actions])
        c.out.line(rep.summary)
        if rep.next:
            c.out.line(f"next: copytrade migrate {rep.next}")

    c.out.result(rep.as_dict(), human)


@app.command("plan")
@handle_errors
def plan(ctx: typer.Context, network: NetworkOpt = None, dry_run: DryRunOpt = False, json_: JsonOpt = False):
    """What exists, what will be deployed and which users are affected; records the plan (the migration begins).

    Example: copytrade migrate plan --network polygon:local
    """
    from ..runbook.migrate import migration_plan

    c = get_ctx(ctx, json_)
    rep = migration_plan(c.settings, c.state, network, dry_run=dry_run)

    def human():
        d = rep.data
        c.out.table(f"Migration plan{' (dry run)' if dry_run else ''}: {rep.network}, generation "
                    f"{rep.from_generation} → {rep.to_generation}", ["step", "status", "address"],
                    [[a.what, a.status, a.address or ""] for a in rep.actions])
        c.out.line(f"users: {d['users']} ({', '.join(f'{n} {s}' for s, n in d['users_by_status'].items())}); "
                   f"{d['collateral_in_old_proxies_usdc']} USDC in old proxies, {d['users_with_positions']} with "
                   f"positions, {d['active_follows_on_old_proxies']} active follows on old proxies")
        c.out.line(rep.summary)
        if rep.next:
            c.out.line(f"next: copytrade migrate {rep.next}")

    c.out.result(rep.as_dict(), human)


@app.command("deploy")
@handle_errors
def deploy(ctx: typer.Context, network: NetworkOpt = None, dry_run: DryRunOpt = False, yes: YesOpt = False,
           json_: JsonOpt = False):
    """Deploy the new generation (Executor + allowlists, ProxyFactory bound to it), approve it from the fleet,
    then make it active (the old one stays recorded as previous). Resumes where an earlier run stopped.

    Example: copytrade migrate deploy --network polygon:local
    """
    from ..runbook.migrate import migrate_deploy

    c = get_ctx(ctx, json_)
    _confirm_live(c, network, yes, dry_run, "deploy")
    _render(c, migrate_deploy(c.settings, c.state, network, dry_run=dry_run))


@app.command("proxy")
@handle_errors
def proxy(ctx: typer.Context, network: NetworkOpt = None,
          move_funds: Annotated[bool, typer.Option("--move-funds", help="Also move the operator's own collateral "
                                                   "from its old proxy to the new one.")] = False,
          dry_run: DryRunOpt = False, yes: YesOpt = False, json_: JsonOpt = False):
    """Create the execution wallet's (operator's) proxy on the new factory.

    Example: copytrade migrate proxy --move-funds
    """
    from ..runbook.migrate import migrate_proxy

    c = get_ctx(ctx, json_)
    _confirm_live(c, network, yes, dry_run, "proxy")
    _render(c, migrate_proxy(c.settings, c.state, network, dry_run=dry_run, move_funds=move_funds))


@app.command("users")
@handle_errors
def users(ctx: typer.Context, network: NetworkOpt = None,
          fmt: ExportFormatOpt = ExportFormat.TABLE,
          output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the csv/json export to this "
                                                      "file instead of stdout.")] = None,
          dry_run: DryRunOpt = False, json_: JsonOpt = False):
    """Every user's old proxy with balances, positions and migration status (not started / withdrawn /
    re-deposited); records each status and moves re-deposited users' follows to their new proxy.

    Example: copytrade migrate users --format csv --output users.csv
    """
    from ..runbook.migrate import migrate_users, users_export

    c = get_ctx(ctx, json_)
    rep = migrate_users(c.settings, c.state, network, dry_run=dry_run)
    rows = rep.data["users"]
    if fmt is not ExportFormat.TABLE and not c.out.json_mode:
        text = users_export(rows, fmt.value)
        if output:
            output.write_text(text)
            c.out.line(f"{len(rows)} users written to {output} ({fmt.value}); {rep.summary}")
        else:
            sys.stdout.write(text)
        return

    def human():
        c.out.table(f"Users of generation {rep.from_generation} on {rep.network}",
                    ["owner", "old proxy", "USDC", "positions", "paused", "new proxy", "new USDC", "status"],
                    [[r["owner"], r["old_proxy"], r["old_collateral_usdc"], len(r["old_positions"]),
                      "yes" if r["old_paused"] else "no", r["new_proxy"] or "", r["new_collateral_usdc"], r["status"]]
                     for r in rows])
        c.out.line(rep.summary)

    c.out.result(rep.as_dict(), human)


@app.command("deprecate")
@handle_errors
def deprecate(ctx: typer.Context, network: NetworkOpt = None,
              batch_size: Annotated[int, typer.Option("--batch-size", help="Proxies paused per transaction "
                                                      "(1-256).")] = 100,
              dry_run: DryRunOpt = False, yes: YesOpt = False, json_: JsonOpt = False):
    """Pause every old proxy through the old factory (owners can still withdraw) and mark it deprecated: the
    supervisor stops routing copies to it. Resumes where an interrupted run stopped.

    Example: copytrade migrate deprecate --batch-size 200
    """
    from ..runbook.migrate import migrate_deprecate

    c = get_ctx(ctx, json_)
    _confirm_live(c, network, yes, dry_run, "deprecate")
    _render(c, migrate_deprecate(c.settings, c.state, network, dry_run=dry_run, batch_size=batch_size))


@app.command("status")
@handle_errors
def status(ctx: typer.Context, network: NetworkOpt = None, json_: JsonOpt = False):
    """The steps of the latest migration: done, interrupted (rerun it) or not yet.

    Example: copytrade migrate status --json
    """
    from ..runbook.migrate import migration_status

    c = get_ctx(ctx, json_)
    rep = migration_status(c.settings, c.state, network)

    def human():
        if rep.actions:
            c.out.table(f"Migration {rep.from_generation} → {rep.to_generation} on {rep.network}", ["step", "status"],
                        [[a.what, a.status] for a in rep.actions])
        c.out.line(rep.summary)

    c.out.result(rep.as_dict(), human)
