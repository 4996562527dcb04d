"""`copytrade fleet setup|status`: the workers' signers and deposit wallets."""
from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOpt, NetworkOpt, get_ctx, handle_errors

app = typer.Typer(no_args_is_help=True)
FloatOpt = Annotated[float | None, typer.Option("--float", min=0, help="pUSD float per wallet (default: 2000 on the fork, none live).")]


def _rows(c, st) -> None:
    labels = list(st.spenders)
    c.out.table(f"Fleet on {st.network}: {st.ready}/{len(st.workers)} ready",
                ["#", "signer", "wallet", "deployed", "gas POL", "float pUSD", "approvals", "registered"],
                [[w.index, w.signer, w.wallet + (" (EOA)" if w.eoa_mode else ""), "yes" if w.deployed else "NO",
                  f"{w.gas_wei / 10**18:.4g}", f"{w.float_micro / 10**6:g}",
                  f"{2 * len(labels) - len(w.missing_approvals)}/{2 * len(labels)}"
                  + (f" missing {', '.join(w.missing_approvals)}" if w.missing_approvals else ""),
                  {True: "yes", False: "NO", None: "-"}[w.registered]] for w in st.workers])


@app.command("status")
@handle_errors
def status(ctx: typer.Context, network: NetworkOpt = None, json_: JsonOpt = False):
    """Each worker: signer (gas payer), deposit wallet, deployed, gas, pUSD float, approvals, registered.

    Example: copytrade fleet status
    """
    from ..runbook.fleet import fleet_status

    c = get_ctx(ctx, json_)
    st = fleet_status(c.settings, c.state, network)
    c.out.result(st.as_dict(), lambda: _rows(c, st))


@app.command("setup")
@handle_errors
def setup(ctx: typer.Context, network: NetworkOpt = None, float_usd: FloatOpt = None, json_: JsonOpt = False):
    """Create what each worker lacks: signer gas, its deposit wallet (relayer), approvals, pUSD float. Idempotent.

    Example: copytrade fleet setup
    """
    from ..runbook.fleet import fleet_setup

    c = get_ctx(ctx, json_)
    rep = fleet_setup(c.settings, c.state, network, float_usd=float_usd,
                      progress=None if c.out.json_mode else c.out.line)

    def human():
        d = rep.done
        c.out.line(f"Fleet setup on {rep.network}: {d['gas']} gas top-ups, {d['wallets']} wallets created, "
                   f"{d['approval_calls']} approvals, {d['float']} float top-ups ({rep.how})")
        _rows(c, rep.status)
    c.out.result(rep.as_dict(), human)
