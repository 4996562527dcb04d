"""`copytrade fork up|down|status`."""
from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOpt, get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)


@app.command("up")
@handle_errors
def up(ctx: typer.Context,
       node: Annotated[str, typer.Option("--node", help="anvil (default) or hardhat.")] = "anvil",
       port: Annotated[int | None, typer.Option("--port", help="RPC port on 127.0.0.1 (default: a free one).")] = None,
       fork_url: Annotated[str | None, typer.Option("--fork-url", help="Fork real Polygon from this RPC (nothing is planted).")] = None,
       no_deploy: Annotated[bool, typer.Option("--no-deploy", help="Plant Polymarket only; skip Executor/Factory/proxy.")] = False,
       no_clob: Annotated[bool, typer.Option("--no-clob", help="Do not start the local CLOB server.")] = False,
       block_time: Annotated[float | None, typer.Option("--block-time", help="Seconds per block (default: mine on every tx).")] = None,
       grandfathered: Annotated[list[str] | None, typer.Option("--grandfathered", help="A maker the local CLOB lets post signature types 0/1/2 (repeatable; default none, as live).")] = None,
       json_: JsonOpt = False):
    """Start a local Polygon (chain id 137) with Polymarket planted, contracts deployed, proxy funded.

    Example: copytrade fork up
    """
    from eth_utils import is_address

    from ..errors import UsageError
    from ..runbook.fork import fork_up

    bad = [a for a in grandfathered or [] if not is_address(a)]
    if bad:
        raise UsageError(f"--grandfathered needs addresses; not one: {bad[0]}")
    c = get_ctx(ctx, json_)
    if c.out.json_mode:
        report = fork_up(c.settings, c.state, kind=node, port=port, fork_url=fork_url, deploy=not no_deploy,
                         block_time=block_time, clob=not no_clob, grandfathered=tuple(grandfathered or ()))
    else:
        with c.out.console.status("fork up") as status:
            report = fork_up(c.settings, c.state, kind=node, port=port, fork_url=fork_url, deploy=not no_deploy,
                             block_time=block_time, clob=not no_clob, grandfathered=tuple(grandfathered or ()),
                             progress=lambda m: status.update(f"[bold]fork up[/]: {m}"))

    def human():
        c.out.table(f"Fork up in {report.seconds:.1f}s", ["step", "what", "s"],
                    [[s, d, f"{t:.2f}"] for s, d, t in report.steps])
        if report.addresses:
            c.out.table(None, ["contract", "address"], [[k, v] for k, v in report.addresses.items()])
        c.out.line(f"Fork ready: {report.rpc_url} (chain id {report.chain_id}, PID {report.pid})")

    c.out.result(report.as_dict(), human)


@app.command("down")
@handle_errors
def down(ctx: typer.Context, json_: JsonOpt = False):
    """Stop the node (and local CLOB) this COPYTRADE_HOME started, by PID.

    Example: copytrade fork down
    """
    from ..runbook.fork import fork_down

    c = get_ctx(ctx, json_)
    res = fork_down(c.state)
    c.out.result(res, lambda: c.out.line(
        f"Stopped {res['kind']} (PID {res['pid']})" + (f" and local CLOB (PID {res['clob_pid']})" if res.get("clob_stopped") else "")
        + (f" and local relayer (PID {res['relayer_pid']})" if res.get("relayer_stopped") else "")
        if res.get("pid") else "No fork recorded; nothing to stop"))


@app.command("status")
@handle_errors
def status(ctx: typer.Context, json_: JsonOpt = False):
    """Say what runs: RPC URL, chain id, block, PID, addresses. Exit 4 if nothing runs.

    Example: copytrade fork status --json
    """
    from ..runbook.fork import fork_status

    c = get_ctx(ctx, json_)
    st = fork_status(c.state)

    def human():
        if not st.get("pid"):
            c.out.line("No fork running (start one with `copytrade fork up`)")
            return
        c.out.line(f"{st['kind']} {'running' if st['running'] else 'NOT running'}: {st['rpc_url']} "
                   f"chain id {st['chain_id']} block {st.get('block', '?')} PID {st['pid']}")
        if st.get("clob_url"):
            c.out.line(f"local CLOB: {st['clob_url']} (PID {st['clob_pid']})")
        if st.get("relayer_url"):
            c.out.line(f"local relayer: {st['relayer_url']} (PID {st['relayer_pid']})")
        if st.get("addresses"):
            c.out.table(None, ["contract", "address"], [[k, v] for k, v in st["addresses"].items()])

    c.out.result(st, human)
    if not st.get("running"):
        raise typer.Exit(4)
