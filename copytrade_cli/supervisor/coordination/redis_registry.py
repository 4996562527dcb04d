"""Worker ownership on Redis: one key per worker address, so two instances never share a nonce lane."""
from __future__ import annotations

import json
import os
import socket
import time

from ...chain.node import pid_alive
from ...errors import NotReadyError
from .redis_link import RedisDown, RedisLink

# --- worker-key registry -----------------------------------------------------------------------------------

_CAS_PEXPIRE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_CAS_DEL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_CAS_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return false
"""


class WorkerRegistry:
    """One Redis key per worker address, held (with a TTL, renewed) by the instance whose nonce lane it is.

    Start-up takes every key of its fleet or refuses: another live instance holding one means two instances
    share a nonce lane (overlapping COPY_TRADING_WORKER_INDEX). A key left by this same slot's previous,
    dead process (same host and worker index) is taken over. A dead instance's worker can be *adopted* for
    one group by another instance (to finish a group journalled on that worker) once its key has lapsed.
    """

    def __init__(self, link: RedisLink, instance: str, slot: str, lease_ms: int):
        self.link, self.instance, self.slot, self.lease_ms = link, instance, slot, lease_ms
        self.held: dict[str, str] = {}  # address (lower) -> value we wrote

    def _key(self, address: str) -> str:
        return self.link.k("worker", address.lower())

    def _value(self, mode: str) -> str:
        return json.dumps({"instance": self.instance, "slot": self.slot, "host": socket.gethostname(),
                           "pid": os.getpid(), "mode": mode}, separators=(",", ":"))

    def acquire_fleet(self, addresses: list[str], wait_s: float = 0.0) -> None:
        """Take every worker key or raise NotReadyError naming the overlap."""
        deadline = time.time() + wait_s
        while True:
            conflicts = self._try_acquire(addresses)
            if not conflicts:
                return
            adopting = [c for c in conflicts if c[1].get("mode") == "adopt"]
            if adopting and time.time() < deadline:
                time.sleep(0.5)
                continue
            self.release_all()
            addr, owner = conflicts[0]
            raise NotReadyError(
                f"worker {addr} is already held by instance {owner.get('instance')} (slot {owner.get('slot')}, "
                f"PID {owner.get('pid')} on {owner.get('host')}); {len(conflicts)} of this fleet's workers overlap: "
                "give each instance its own COPY_TRADING_WORKER_INDEX (two instances must never share a nonce lane)")

    def _try_acquire(self, addresses: list[str]) -> list[tuple[str, dict]]:
        conflicts = []
        value = self._value("own")
        for a in addresses:
            key = self._key(a)
            if self.link.call(self.link.r.set, key, value, nx=True, px=self.lease_ms):
                self.held[a.lower()] = value
                continue
            cur = self.link.call(self.link.r.get, key)
            if cur is None:
                if self.link.call(self.link.r.set, key, value, nx=True, px=self.lease_ms):
                    self.held[a.lower()] = value
                    continue
                cur = self.link.call(self.link.r.get, key) or "{}"
            owner = _loads(cur)
            if owner.get("instance") == self.instance or self._previous_life(owner):
                s = self.link.script("cas_set", _CAS_SET)
                if self.link.call(s, keys=[key], args=[cur, value, self.lease_ms]):
                    self.held[a.lower()] = value
                    continue
            conflicts.append((a, owner))
        return conflicts

    def _previous_life(self, owner: dict) -> bool:
        """The key was left by this slot's previous process, which is gone (a restart after a crash)."""
        if owner.get("slot") != self.slot or owner.get("mode") != "own":
            return False
        if owner.get("host") != socket.gethostname():
            return False
        pid = owner.get("pid")
        return not isinstance(pid, int) or pid == os.getpid() or not pid_alive(pid)

    def adopt(self, address: str) -> bool:
        """Hold a dead instance's worker for one group; False if its owner still holds it."""
        value = self._value("adopt")
        if self.link.call(self.link.r.set, self._key(address), value, nx=True, px=self.lease_ms):
            self.held[address.lower()] = value
            return True
        return False

    def renew(self) -> list[str]:
        """Extend every key we hold; returns addresses whose key was lost (then re-taken if free)."""
        lost = []
        s = self.link.script("cas_pexpire", _CAS_PEXPIRE)
        for addr, value in list(self.held.items()):
            if not int(self.link.call(s, keys=[self._key(addr)], args=[value, self.lease_ms]) or 0):
                # Redis restarted empty (or the key lapsed): take it back unless somebody else has it now.
                if self.link.call(self.link.r.set, self._key(addr), value, nx=True, px=self.lease_ms):
                    continue
                lost.append(addr)
        return lost

    def release(self, address: str) -> None:
        """Drop one key we hold."""
        value = self.held.pop(address.lower(), None)
        if value is not None:
            s = self.link.script("cas_del", _CAS_DEL)
            self.link.call(s, keys=[self._key(address)], args=[value])

    def release_all(self) -> None:
        """Drop every key we hold (clean shutdown)."""
        for addr in list(self.held):
            try:
                self.release(addr)
            except RedisDown:
                return


def _loads(text: str) -> dict:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {}
