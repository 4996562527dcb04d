"""`copytrade deploy executor|factory|addresses`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .common import DryRunOpt, JsonOpt, NetworkOpt, YesOpt, get_ctx, handle_errors
from .options import AddressFormat, AddressFormatOpt

app = typer.Typer(no_args_is_help=True)
ForceOpt = Annotated[bool, typer.Option("--force", help="Deploy a new one even if one is recorded.")]


def _confirm_live(c, network: str | None, yes: bool, dry_run: bool) -> None:
    from ..chain.network import normalize

    name, _, is_local = normalize(network, c.settings)
    if is_local or yes or dry_run:
        return
    if c.settings.trading_private_key is None:
        raise UsageError(f"deploying to {name} needs an explicit account: set TRADING_PRIVATE_KEY")
    typed = typer.prompt(f"Deploying to {name} spends real gas. Type the network name to continue")
    if typed.strip() != name:
        raise UsageError("confirmation did not match; nothing deployed")


def _render(c, report) -> None:
    def human():
        c.out.table(f"{'Would do' if report.dry_run else 'Deployed'} on {report.network}", ["step", "address", "tx", "gas"],
                    [[s.what, s.address or "", s.tx or "", s.gas_used or ""] for s in report.steps])
    c.out.result(report.as_dict(), human)


@app.command("compile")
@handle_errors
def compile_(ctx: typer.Context, json_: JsonOpt = False):
    """Compile every contract offline (Vyper 0.4.3 + snekmate), cached under build/contracts/.

    Example: copytrade deploy compile
    """
    from ..chain.contracts import SOURCES, load_artifact

    c = get_ctx(ctx, json_)
    rows = []
    for name in SOURCES:
        art = load_artifact(name)
        rows.append({"contract": name, "source": f"contracts/{SOURCES[name]}",
                     "runtime_bytes": (len(art.runtime_bytecode) - 2) // 2, "functions": len(art.selectors())})
    c.out.result(rows, lambda: c.out.table("Compiled contracts", ["contract", "source", "runtime bytes", "functions"],
                                           [[r["contract"], r["source"], r["runtime_bytes"], r["functions"]]
                                            for r in rows]))


@app.command("executor")
@handle_errors
def executor(ctx: typer.Context, network: NetworkOpt = None,
             workers: Annotated[int | None, typer.Option("--workers", help="Workers to register (default SUPERVISOR_WORKER_POOL_SIZE).")] = None,
             force: ForceOpt = False, dry_run: DryRunOpt = False, yes: YesOpt = False, json_: JsonOpt = False):
    """Deploy the Executor, register the worker fleet (signers + deposit wallets) and the allowlists (pUSD + CTF),
    then run `fleet setup` (wallets, approvals, float).

    Example: copytrade deploy executor --network polygon:local --workers 20
    """
    from ..runbook.fleet import deploy_executor_with_fleet

    c = get_ctx(ctx, json_)
    _confirm_live(c, network, yes, dry_run)
    _render(c, deploy_executor_with_fleet(c.settings, c.state, network, workers=workers, force=force,
                                          dry_run=dry_run))


@app.command("factory")
@handle_errors
def factory(ctx: typer.Context, network: NetworkOpt = None, force: ForceOpt = False, dry_run: DryRunOpt = False,
            yes: YesOpt = False, json_: JsonOpt = False):
    """Deploy Treasury + ProxyFactory bound to the recorded Executor.

    Example: copytrade deploy factory --network polygon:local
    """
    from ..chain.operations import deploy_factory_op

    c = get_ctx(ctx, json_)
    _confirm_live(c, network, yes, dry_run)
    _render(c, deploy_factory_op(c.settings, c.state, network, force=force, dry_run=dry_run))


@app.command("addresses")
@handle_errors
def addresses(ctx: typer.Context, network: NetworkOpt = None,
              fmt: AddressFormatOpt = AddressFormat.TABLE,
              write_env: Annotated[Path | None, typer.Option("--write-env", help="Also write env lines to this file (replacing those keys).")] = None,
              json_: JsonOpt = False):
    """What is deployed where (from state; also in $COPYTRADE_HOME/deployed-addresses.json).

    Example: copytrade deploy addresses --format env
    """
    from ..chain.deploy import env_lines
    from ..chain.operations import addresses_op

    c = get_ctx(ctx, json_)
    data = addresses_op(c.settings, c.state, network)
    lines = env_lines(data["contracts"], data["collateral"], data["ctf"], data["pusd"])
    if write_env:
        _write_env(write_env, lines)
    if c.out.json_mode or fmt is AddressFormat.JSON:
        c.out.json_mode = True
        c.out.json(data)
    elif fmt is AddressFormat.ENV:
        for line in lines:
            c.out.line(line)
    else:
        c.out.table(f"Deployments on {data['network']}", ["contract", "address"],
                    [[k, v] for k, v in data["contracts"].items()] or [["(none)", ""]])


def _write_env(path: Path, lines: list[str]) -> None:
    keys = {l.split("=", 1)[0] for l in lines}
    old = path.read_text().splitlines() if path.exists() else []
    kept = [l for l in old if l.split("=", 1)[0].strip() not in keys]
    path.write_text("\n".join(kept + lines) + "\n")
