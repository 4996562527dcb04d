"""`copytrade supervise`."""
from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Annotated

import typer

from ..errors import NotReadyError, UsageError
from .common import NetworkOpt, get_ctx, handle_errors
from .options import Channels, ChannelsOpt


@handle_errors
def supervise(ctx: typer.Context, network: NetworkOpt = None,
              channels: ChannelsOpt = Channels.parse("mempool,logs,activity"),
              per_follower: Annotated[bool, typer.Option("--per-follower", help="One order per follower (the seed's model) instead of aggregated execution.")] = False,
              no_coalesce: Annotated[bool, typer.Option("--no-coalesce", help="Never merge queued fills of the same order (flow, side, token, price) into one order under backlog: one order per leader fill.")] = False,
              max_seconds: Annotated[float | None, typer.Option("--max-seconds", help="Stop after this long.")] = None,
              exit_after: Annotated[int | None, typer.Option("--exit-after", help="Stop after this many job groups finished.")] = None,
              metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on this port (/metrics).")] = None,
              metrics_host: Annotated[str, typer.Option("--metrics-host", help="Address the metrics endpoint binds to.")] = "127.0.0.1",
              log_json: Annotated[bool, typer.Option("--log-json", help="Structured logs: one JSON object per line on stdout.")] = False,
              live: Annotated[bool, typer.Option("--live", help="Compact live view (counters and the last events) instead of a log stream.")] = False,
              health: Annotated[bool, typer.Option("--health", help="Do not run: read the instances' health key/file; exit 0 if every live instance is ok, 8 otherwise.")] = False,
              dry_run: Annotated[bool, typer.Option("--dry-run", help="Detect and decide on real traffic, simulate each copy against the order book and journal it (`jobs list` shows it apart): no transaction, no order. Live networks always run so unless ENABLE_REAL_TRADING=true.")] = False):
    """Run the supervisor until Ctrl-C (SIGTERM/SIGINT stop intake and finish running jobs).

    With SUPERVISOR_REDIS_URL set, several instances share the queue, dedup and caps (docs/scale-out.md).

    Example: copytrade supervise --channels mempool,logs,activity --metrics-port 9108
    """
    c = get_ctx(ctx)
    if health:
        from ..supervisor.observe import check_health

        ok, docs, summary = check_health(c.settings)
        c.out.result({"healthy": ok, "summary": summary, "instances": docs}, lambda: docs and c.out.table(
            f"Supervisor health: {summary}", ["instance", "status", "shard", "workers", "running", "done", "expires in"],
            [[d.get("instance"), d.get("status"), d.get("shard"), d.get("workers"), d.get("running"),
              d.get("groups_done"), f"{d.get('ttl_ms', 0) / 1000:.1f}s"] for d in docs]))
        if not ok:
            if c.out.json_mode:
                raise typer.Exit(NotReadyError.exit_code)
            raise NotReadyError(summary)
        return

    # NOTE: imported here, not at the top: they pull in web3 and pydantic, and `copytrade --help` must stay fast.
    from ..chain.network import connect_network
    from ..runbook.supervise import start_supervisor
    from ..supervisor.runner import Supervisor, SupervisorOptions

    chans = tuple(ch.value for ch in channels)
    say = c.out.line
    chain = connect_network(c.settings, c.state, network)
    if dry_run or (not chain.is_local and not c.settings.enable_real_trading):
        from ..supervisor.execute.dryrun import run_dry_run

        if not dry_run:
            say(f"ENABLE_REAL_TRADING is not true: {chain.network} starts in dry-run (nothing is executed)")
        run_dry_run(c.settings, c.state, chain, channels=chans, say=say, max_seconds=max_seconds)
        return
    if log_json:
        from ..supervisor.observe import setup_json_logging

        slog = logging.getLogger("copytrade.supervisor")
        say = lambda line: slog.info(c.out.scrub(line))  # noqa: E731
    view = None
    if live:
        from .live import LiveView  # NOTE: lazily: it pulls in statistics, which `copytrade --help` does not need

        view = LiveView(c.out, None)
        say = view.say
    sup = Supervisor(c.settings, c.state, chain, say=say,
                     options=SupervisorOptions(channels=chans, aggregate=not per_follower, coalesce=not no_coalesce,
                                               max_seconds=max_seconds,
                                               exit_after_groups=exit_after))
    if log_json:
        setup_json_logging(sys.stdout, {"instance": sup.instance_id,
                                        "shard": f"{c.settings.supervisor_shard_index}/{c.settings.supervisor_shard_count}"},
                           c.settings.secret_values())
    if metrics_port is not None:
        port = sup.prom.serve(metrics_port, metrics_host)
        say(f"[Metrics] Prometheus metrics on http://{metrics_host}:{port}/metrics")
    # NOTE: handlers only set the stop event; shutdown runs in run()'s finally.
    signal.signal(signal.SIGTERM, lambda *_: sup.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: sup.stop_event.set())
    try:
        start_supervisor(sup)  # the readiness pre-flight, then the supervisor
    except BaseException:
        sup.abort()  # stop before anything runs, releasing what was taken (idempotent)
        raise
    if view is not None:
        view.sup = sup
        result: list = []
        runner = threading.Thread(target=lambda: result.append(sup.run()), name="supervisor", daemon=True)
        runner.start()
        view.run(runner)
        m, say = result[0] if result else sup.metrics, c.out.line
    else:
        m = sup.run()
    say(f"Supervisor stopped: {m.groups_done} job groups finished, jobs {m.jobs}, drops {m.drops}")
