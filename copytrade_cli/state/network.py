"""What copytrade knows about each network: the local node it started, the deployed contracts (by generation),
the follower proxies and the registered worker fleet (tables nodes, deployments, proxies, workers)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .db import StateDB, now_iso


@dataclass
class NodeRecord:
    """A local node copytrade started (and the local CLOB/feed that go with it)."""

    name: str
    kind: str
    pid: int
    rpc_url: str
    ws_url: str
    chain_id: int
    port: int
    log_path: str
    started_at: str
    fork_url: str | None = None
    world_json: str | None = None
    clob_pid: int | None = None
    clob_url: str | None = None
    feed_url: str | None = None
    block_time: float | None = None
    relayer_pid: int | None = None
    relayer_url: str | None = None


@dataclass
class Deployment:
    """One deployed contract on one network, of one generation (migrations add generations)."""

    network: str
    name: str
    address: str
    tx: str | None
    block: int | None
    gas_used: int | None
    deployer: str | None
    generation: int = 1
    status: str = "active"
    created_at: str = field(default_factory=now_iso)
    id: int | None = None


@dataclass
class ProxyRecord:
    """A follower's proxy wallet."""

    network: str
    address: str
    owner: str
    factory: str
    tx: str | None = None
    status: str = "active"
    migration_status: str | None = None
    created_at: str = field(default_factory=now_iso)


class NetworkTables(StateDB):
    """Nodes, deployments, proxies and workers of each network."""

    def save_node(self, node: NodeRecord) -> None:
        """Record a running node (replaces the previous record of that name)."""
        with self._lock:
            self.db["nodes"].upsert(asdict(node), pk="name")

    def get_node(self, name: str = "default") -> NodeRecord | None:
        """The recorded node, or None."""
        rows = self._q("select * from nodes where name = ?", [name])
        return NodeRecord(**rows[0]) if rows else None

    def update_node(self, name: str, **values: Any) -> None:
        """Change fields of a recorded node."""
        with self._lock:
            self.db["nodes"].update(name, values)

    def delete_node(self, name: str = "default") -> None:
        """Forget a node (after it was stopped)."""
        with self._lock:
            self.db["nodes"].delete_where("name = ?", [name])

    def record_deployment(self, dep: Deployment) -> Deployment:
        """Record a deployment (unique per network, name and generation)."""
        with self._lock:
            row = asdict(dep)
            row.pop("id")
            # INSERT OR REPLACE: the unique (network, name, generation) index replaces a forced redeploy
            self.db["deployments"].insert(row, replace=True)
        return self.get_deployment(dep.network, dep.name, dep.generation)  # type: ignore[return-value]

    def get_deployment(self, network: str, name: str, generation: int | None = None) -> Deployment | None:
        """The active (or a given generation's) deployment of `name` on `network`."""
        if generation is None:
            rows = self._q("select * from deployments where network=? and name=? and status='active' "
                           "order by generation desc limit 1", [network, name])
        else:
            rows = self._q("select * from deployments where network=? and name=? and generation=?",
                           [network, name, generation])
        return Deployment(**rows[0]) if rows else None

    def list_deployments(self, network: str | None = None) -> list[Deployment]:
        """All deployments, newest generation first."""
        if network:
            rows = self._q("select * from deployments where network=? order by generation desc, id", [network])
        else:
            rows = self._q("select * from deployments order by network, generation desc, id")
        return [Deployment(**r) for r in rows]

    def set_deployment_status(self, network: str, name: str, generation: int, status: str) -> None:
        """Mark a generation active or previous."""
        with self._lock:
            self.db.execute("update deployments set status=? where network=? and name=? and generation=?",
                            [status, network, name, generation])

    def forget_network(self, network: str) -> None:
        """Drop every record tied to a network (used when a fresh local fork replaces an old one)."""
        with self._lock:
            for table in ("deployments", "proxies", "workers", "migration_ops"):
                self.db.execute(f"delete from {table} where network=?", [network])

    def record_proxy(self, proxy: ProxyRecord) -> None:
        """Record a proxy (idempotent)."""
        with self._lock:
            self.db["proxies"].upsert(asdict(proxy), pk=("network", "address"))

    def list_proxies(self, network: str, factory: str | None = None) -> list[ProxyRecord]:
        """Proxies on a network (optionally of one factory)."""
        if factory:
            rows = self._q("select * from proxies where network=? and factory=? order by created_at", [network, factory])
        else:
            rows = self._q("select * from proxies where network=? order by created_at", [network])
        return [ProxyRecord(**r) for r in rows]

    def get_proxy(self, network: str, address: str) -> ProxyRecord | None:
        """One proxy by address (case-insensitive)."""
        rows = self._q("select * from proxies where network=? and lower(address)=lower(?)", [network, address])
        return ProxyRecord(**rows[0]) if rows else None

    def set_proxy_fields(self, network: str, address: str, **values: Any) -> None:
        """Update a proxy's status fields."""
        with self._lock:
            self.db["proxies"].update((network, address), values)

    def record_workers(self, network: str, addresses: list[str]) -> None:
        """Record the registered worker fleet."""
        with self._lock:
            self.db["workers"].upsert_all(
                [{"network": network, "address": a, "idx": i, "registered": 1, "updated_at": now_iso()}
                 for i, a in enumerate(addresses)], pk=("network", "address"))

    def list_workers(self, network: str) -> list[str]:
        """Registered worker addresses."""
        return [r["address"] for r in self._q("select address from workers where network=? order by idx", [network])]
