"""`copytrade supervise`."""
from __future__ import annotations

from typing import Annotated

import typer

from .common import NetworkOpt, get_ctx, handle_errors


@handle_errors
def supervise(ctx: typer.Context, network: NetworkOpt = None,
              channels: Annotated[str, typer.Option("--channels", help="Comma list of mempool, logs, activity, data_api.")] = "mempool,logs,activity",
              per_follower: Annotated[bool, typer.Option("--per-follower", help="One order per follower (the seed's model) instead of aggregated execution.")] = False,
              max_seconds: Annotated[float | None, typer.Option("--max-seconds", help="Stop after this long.")] = None,
              exit_after: Annotated[int | None, typer.Option("--exit-after", help="Stop after this many job groups finished.")] = None):
    """Run the supervisor: detect, decide, queue, execute through the worker fleet, until stopped.

    SIGTERM/SIGINT stop intake and let running jobs finish.

    Example: copytrade supervise --channels mempool,logs,activity
    """
    import signal

    from ..chain.network import connect_network
    from ..supervisor.runner import CHANNELS, Supervisor, SupervisorOptions
    from ..errors import UsageError

    c = get_ctx(ctx)
    chans = tuple(x.strip() for x in channels.split(",") if x.strip())
    bad = [x for x in chans if x not in CHANNELS]
    if bad or not chans:
        raise UsageError(f"--channels {channels!r}: use a comma list of {', '.join(CHANNELS)}")
    chain = connect_network(c.settings, c.state, network)
    sup = Supervisor(c.settings, c.state, chain, say=c.out.line,
                     options=SupervisorOptions(channels=chans, aggregate=not per_follower, max_seconds=max_seconds,
                                               exit_after_groups=exit_after))
    # NOTE: handlers only set the stop event; shutdown runs in run()'s finally.
    signal.signal(signal.SIGTERM, lambda *_: sup.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: sup.stop_event.set())
    sup.start()
    m = sup.run()
    c.out.line(f"Supervisor stopped: {m.groups_done} job groups finished, jobs {m.jobs}, drops {m.drops}")
