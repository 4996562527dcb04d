"""A worker given back early (order outcome journalled) and the float its settling groups still hold."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from copytrade_cli.polymarket.clob import PlacedOrder
from copytrade_cli.supervisor.fleet import Fleet, Lease, Worker


def test_filled_amounts_from_the_clob_answer():
    p = PlacedOrder("0x1", {}, {"makingAmount": "5", "takingAmount": "9.090909", "transactionsHashes": ["0xa"]}, True)
    assert (p.making_micro, p.taking_micro, p.tx_hashes) == (5_000_000, 9_090_909, ["0xa"])
    q = PlacedOrder("0x1", {}, {"transactionsHashes": []}, True)
    assert q.making_micro is None and q.taking_micro is None
    assert PlacedOrder("0x1", {}, {"makingAmount": "n/a"}, True).making_micro is None


def test_reservations_per_group():
    w = Worker(0, SimpleNamespace(address="0x" + "11" * 20), lane=None)
    w.reserve("g1", 3_000_000)
    w.reserve("g2", 2_000_000)
    assert w.reserved_except("g3") == 5_000_000
    assert w.reserved_except("g1") == 2_000_000
    w.reserve("g1", 0)
    assert w.reserved_except("g3") == 2_000_000


def _fleet(n: int, per_worker: int = 1) -> Fleet:
    f = Fleet.__new__(Fleet)
    f.workers = [Worker(i, SimpleNamespace(address="0x" + f"{i + 1:02x}" * 20), lane=None) for i in range(n)]
    f.by_address = {w.address.lower(): w for w in f.workers}
    f._cv = threading.Condition()
    f.per_worker = per_worker
    f._free = {w.address.lower(): w for w in f.workers}
    f._slots = {w.address.lower(): per_worker for w in f.workers}
    return f


def test_groups_per_worker_slots():
    """SUPERVISOR_GROUPS_PER_WORKER=2: a worker runs two groups at once, never three; a slot given back is
    taken again, and a lease's double give-back frees one slot only."""
    from copytrade_cli.errors import CopytradeError

    f = _fleet(1, per_worker=2)
    with f.lease(timeout=1) as a, f.lease(timeout=1) as b:
        assert a.worker is b.worker
        with pytest.raises(CopytradeError, match="no free worker"):
            with f.lease(timeout=0.05):
                pass
        a.give_back()
        a.give_back()
        with f.lease(timeout=1) as c:
            assert c.worker is a.worker
            with pytest.raises(CopytradeError):
                with f.lease(timeout=0.05):
                    pass
    assert f._slots[a.worker.address.lower()] == 2


def test_lifo_prefers_the_worker_freed_last():
    f = _fleet(3)
    with f.lease() as a:
        with f.lease() as b:
            assert b.worker is not a.worker
        # b was freed first, a last: the next group gets a (not b, not the never-used third worker)
    with f.lease() as c:
        assert c.worker is a.worker


def test_give_back_early_never_returns_a_worker_someone_else_holds():
    f = _fleet(1)
    with f.lease() as first:
        w = first.worker
        first.give_back()  # order accepted: the next group may take it
        with f.lease(w.address, timeout=1) as second:
            assert second.worker is w
            first.give_back()  # idempotent: must not free it under the second holder
            assert not f._free
        assert f._free  # given back by the second lease only
    assert isinstance(first, Lease) and len(f._free) == 1
