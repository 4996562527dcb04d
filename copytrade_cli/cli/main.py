"""The root `copytrade` app: wires one sub-app per command group; nothing else lives here."""
from __future__ import annotations

from typing import Annotated

import typer

from . import (clob_cmd, config_cmd, demo_cmd, deploy_cmd, fleet_cmd, follow_cmd, fork_cmd, jobs_cmd, leaders_cmd,
               market_cmd, migrate_cmd, proxy_cmd, state_cmd, supervise_cmd, trade_cmd, verify_cmd)
from .common import AppContext, handle_errors

app = typer.Typer(
    name="copytrade",
    help="Operator toolkit for Polymarket copy trading: contracts, local fork, supervisor, readiness, migration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(ctx: typer.Context,
          json_: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output for every command.")] = False):
    """Exit codes: 0 ok, 1 unexpected, 2 bad config/usage, 3 state, 4 node/chain, 5 deployment, 6 funds,
    7 CLOB, 8 not ready, 9 not built yet. COPYTRADE_DEBUG=1 shows tracebacks."""
    ctx.obj = AppContext(json_mode=json_)


app.add_typer(config_cmd.app, name="config", help="Show and check the configuration (secrets masked).")
app.add_typer(state_cmd.app, name="state", help="Inspect the SQLite state file.")
app.add_typer(fork_cmd.app, name="fork", help="Run a local Polygon fork with Polymarket planted in it.")
app.add_typer(clob_cmd.app, name="clob", help="Serve the local Polymarket CLOB, activity feed and Data API.")
app.add_typer(market_cmd.app, name="market", help="List the markets planted on the local fork (tick, neg-risk, fees, minimum size).")
app.add_typer(deploy_cmd.app, name="deploy", help="Deploy the Executor, ProxyFactory and Treasury; list addresses.")
app.add_typer(fleet_cmd.app, name="fleet", help="Set up and show the worker fleet (signers, deposit wallets, float).")
app.add_typer(proxy_cmd.app, name="proxy", help="Create, list, fund and withdraw follower proxies.")
app.add_typer(follow_cmd.app, name="follow", help="Manage follow configs (who copies whom, sizing, caps, filters).")
app.command("seed")(follow_cmd.seed)
app.command("supervise")(supervise_cmd.supervise)
app.add_typer(trade_cmd.app, name="trade", help="Make a leader trade on the fork (single or batch).")
app.add_typer(verify_cmd.app, name="verify", help="Go-live readiness checks.")
app.add_typer(migrate_cmd.app, name="migrate", help="Move users to new contracts (plan, deploy, deprecate).")
app.add_typer(jobs_cmd.app, name="jobs", help="Read the job journal (signals, jobs, steps, debts).")
app.command("demo")(demo_cmd.demo)
app.add_typer(leaders_cmd.app, name="leaders", help="Whom to copy: a leader's record from the Data API (issue #17).")
app.command("backtest")(handle_errors(leaders_cmd.backtest))


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
