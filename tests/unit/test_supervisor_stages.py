"""The supervisor's stages without a chain: the coordination chosen once, typed outcomes, deferred retries."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from copytrade_cli.settings import Settings
from copytrade_cli.state import open_state
from copytrade_cli.supervisor.coordination import choose
from copytrade_cli.supervisor.coordination.local import LocalCoordination
from copytrade_cli.supervisor.decide import Guardrails
from copytrade_cli.supervisor.dispatch import RetryScheduler, outcome_of
from copytrade_cli.supervisor.model import GroupStatus, Outcome, Retry, StallCause


def test_local_coordination_chosen_without_redis(tmp_path):
    s = Settings(COPYTRADE_HOME=str(tmp_path))
    coord = choose(s, open_state(s), "inst", lambda _l: None)
    assert isinstance(coord, LocalCoordination) and coord.mode == "in-process"
    assert coord.group_commit and not coord.redelivers_stalled and not coord.adopts_workers
    g = Guardrails(s, coord.state, store=coord.caps)
    assert g.commits_in_state is True
    assert coord.dedup.add("k", "logs") == (True, True) and coord.dedup.seen("k")
    assert coord.enqueue("g1") == "queued" and coord.queue.get(0.01).group_id == "g1"


def test_outcome_of_keeps_the_typed_cause_and_never_reads_error_text():
    typed = Outcome(GroupStatus.STALLED, StallCause.OUT_OF_GAS)
    assert outcome_of(typed, None) is typed
    assert outcome_of("complete", None) == Outcome(GroupStatus.COMPLETE) and outcome_of("complete", None).final
    # the cause comes only from the typed error (execute.stall_cause), never from the journalled message
    text = outcome_of("stalled", {"error": "0xabc lacks gas to send a transaction; fund it"})
    assert text.status == GroupStatus.STALLED and text.cause == StallCause.OTHER and not text.final


def test_retries_are_requeued_after_their_deferral_by_one_scheduler():
    got: list[tuple[str, float]] = []
    sched = RetryScheduler(lambda r: got.append((r.group_id, time.monotonic())))
    stop = threading.Event()
    t = threading.Thread(target=sched.loop, args=(stop,), daemon=True)
    t.start()
    t0 = time.monotonic()
    sched.schedule(Retry("late", 2, 0.3))
    sched.schedule(Retry("soon", 1, 0.05))
    deadline = time.time() + 3
    while len(got) < 2 and time.time() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(1)
    assert [g for g, _ in got] == ["soon", "late"]
    assert got[1][1] - t0 >= 0.3 and sched.pending() == 0


def test_no_mode_branches_in_the_supervisor():
    root = Path(__file__).resolve().parents[2] / "copytrade_cli" / "supervisor"
    for p in root.rglob("*.py"):
        assert "self.scale" not in p.read_text(), p
