"""`copytrade supervise` (and the demo) start the supervisor here: readiness as its pre-flight, then the
supervisor itself. The supervisor does not know readiness exists; this is the one place the two meet."""
from __future__ import annotations

from typing import Callable

from ..errors import NotReadyError
from ..settings import Settings
from ..state import State
from ..supervisor.runner import Supervisor
from .readiness import Report, run_checks


def preflight(settings: Settings, state: State, chain, say: Callable[[str], None]) -> Report:
    """Run the readiness checks on the supervisor's chain: refuse a live start on a failed required check,
    warn about every failing row otherwise (the fork never blocks)."""
    ready = run_checks(settings, state, chain.network)
    if not ready.ready and not chain.is_local:
        raise NotReadyError(ready.summary())  # NOTE: live trading never starts on a failed required check
    for row in ready.failing():
        say(f"readiness warning: {row.name}: {row.detail}")
    return ready


def start_supervisor(sup: Supervisor) -> Report:
    """The pre-flight on `sup`'s settings, state and chain, then `sup.start()`; nothing runs if either fails."""
    ready = preflight(sup.settings, sup.state, sup.chain, sup.say)
    sup.start()
    return ready
