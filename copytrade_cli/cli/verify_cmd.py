"""`copytrade verify readiness`."""
from __future__ import annotations

import typer

from ..errors import ConfigError, NotReadyError
from .common import JsonOpt, NetworkOpt, get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)


@app.command("readiness")
@handle_errors
def readiness(ctx: typer.Context, network: NetworkOpt = None, json_: JsonOpt = False):
    """Go-live checks, one row each: config, RPC, keys, contracts, fleet, proxies, CLOB, real-trading, Redis.
    Exit 0 only when every required check passes (warnings never fail); 8 otherwise.

    Example: copytrade verify readiness --network polygon:mainnet --json
    """
    from ..runbook.readiness import config_failed, run_checks

    c = get_ctx(ctx, json_)
    try:
        settings = c.settings
    except ConfigError as exc:
        report = config_failed(exc)
    else:
        report = run_checks(settings, c.state, network)

    def human():
        mark = {True: "ok", False: "FAIL"}
        c.out.table(f"Readiness on {report.network or '?'} ({report.seconds:.2f}s)",
                    ["check", "status", "severity", "detail", "fix"],
                    [[k.name, mark[k.ok] if k.ok or k.severity == "required" else "warn", k.severity, k.detail,
                      k.fix or ""] for k in report.checks])

    c.out.result(report.as_dict(), human)
    if not report.ready:
        raise NotReadyError(report.summary())
    c.out.line(report.summary())
