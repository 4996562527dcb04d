"""Observability of a supervisor instance: Prometheus metrics, the health key/file, structured JSON logs.

Metrics live in a registry per Supervisor (several can run in one test process); `serve()` exposes them on
a port of the operator's choice. Health is a small JSON document refreshed every
SUPERVISOR_HEALTH_INTERVAL_MS and valid for three intervals: a Redis key with that TTL when Redis is
configured, else a file in $COPYTRADE_HOME/health/. `copytrade supervise --health` reads them.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..redact import RedactingFilter, redact_text

STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Metrics:
    """Counters the live view and the metrics endpoint read."""

    signals: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    drops: int = 0
    groups_done: int = 0
    latency_ms: list[float] = field(default_factory=list)


class Tally:
    """Where the stages count what happened: the plain `Metrics` and the Prometheus side, together."""

    def __init__(self, metrics: Metrics, prom: "SupervisorMetrics"):
        self.metrics, self.prom = metrics, prom

    def signal(self, channel: str) -> None:
        """A channel handed over a fill."""
        self.metrics.signals[channel] = self.metrics.signals.get(channel, 0) + 1
        self.prom.signals.labels(channel).inc()

    def duplicate(self) -> None:
        """Dedup dropped a fill."""
        self.metrics.duplicates += 1
        self.prom.duplicates.inc()

    def count(self, what: str, n: int = 1) -> None:
        """Jobs (or groups, by final status) by outcome."""
        self.metrics.jobs[what] = self.metrics.jobs.get(what, 0) + n
        self.prom.jobs.labels(what).inc(n)

    def drop(self, n: int) -> None:
        """Jobs dropped by a full queue (recorded)."""
        self.metrics.drops += n
        self.prom.drops.inc(n)

    def rpc_error(self, where: str) -> None:
        """An RPC/chain error stopped a group."""
        self.prom.rpc_errors.labels(where).inc()

    def group_done(self, g: dict[str, Any] | None) -> None:
        """A group reached a final status: its latencies from the journal's timestamps."""
        self.metrics.groups_done += 1
        if g and g.get("t_order_accepted") and g.get("t_detected"):
            self.metrics.latency_ms.append((g["t_order_accepted"] - g["t_detected"]) * 1000)
            self.prom.latency.observe(g["t_order_accepted"] - g["t_detected"])
        if g and g.get("t_done") and g.get("t_detected"):
            self.prom.group_seconds.observe(g["t_done"] - g["t_detected"])

    def step(self, step: str, status: str, seconds: float | None) -> None:
        """One execution step's duration (the flows' `on_step`)."""
        if seconds is not None and status == "ok":
            self.prom.steps.labels(step).observe(seconds)


class SupervisorMetrics:
    """The Prometheus side: counters and histograms updated as things happen, gauges read at scrape time."""

    def __init__(self, sup):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.sup = sup
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.signals = Counter("copytrade_signals", "Leader fills seen, per detection channel", ["channel"], registry=r)
        self.duplicates = Counter("copytrade_signal_duplicates", "Fills dropped by dedup (another channel or "
                                  "instance saw them first)", registry=r)
        self.jobs = Counter("copytrade_jobs", "Jobs (fill x follower) by outcome", ["outcome"], registry=r)
        self.drops = Counter("copytrade_queue_drops", "Jobs dropped because the queue was full (recorded)",
                             registry=r)
        self.steps = Histogram("copytrade_step_seconds", "Duration of each execution step", ["step"],
                               buckets=STEP_BUCKETS, registry=r)
        self.latency = Histogram("copytrade_detect_to_order_seconds", "Leader fill detected -> our order "
                                 "accepted by the CLOB", buckets=STEP_BUCKETS, registry=r)
        self.group_seconds = Histogram("copytrade_group_seconds", "Leader fill detected -> group finished",
                                       buckets=STEP_BUCKETS, registry=r)
        self.rpc_errors = Counter("copytrade_rpc_errors", "RPC/chain errors that stopped a group", ["where"],
                                  registry=r)
        r.register(_ScrapeTime(sup))
        self._server = None

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Start the HTTP endpoint (/metrics); returns the bound port."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return server.server_port

    def close(self) -> None:
        """Stop the HTTP endpoint."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _ScrapeTime:
    """Gauges computed when Prometheus scrapes: queue depth, running groups, debts, worker gas, channel errors."""

    def __init__(self, sup):
        self.sup = sup

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        sup = self.sup
        g = GaugeMetricFamily("copytrade_queue_depth", "Groups queued or running (shared queue in Redis mode)")
        g.add_metric([], _safe(sup.queue_depth, -1))
        yield g
        g = GaugeMetricFamily("copytrade_groups_running", "Groups this instance is executing")
        g.add_metric([], sup.running)
        yield g
        g = GaugeMetricFamily("copytrade_intake_paused", "1 while intake is paused (Redis unreachable)")
        g.add_metric([], 1 if sup.intake_paused() else 0)
        yield g
        debts = _safe(lambda: sup.state.open_debts(), [])
        g = GaugeMetricFamily("copytrade_debts_outstanding", "Smart Buffer debts not yet reimbursed")
        g.add_metric([], len(debts))
        yield g
        g = GaugeMetricFamily("copytrade_debts_outstanding_usd", "USD owed to workers by proxies")
        g.add_metric([], sum(d["amount"] for d in debts) / 1e6)
        yield g
        g = GaugeMetricFamily("copytrade_worker_gas_wei", "Native gas held by each worker (refreshed every 10 s)",
                              labels=["worker"])
        for addr, wei in sorted(sup.worker_gas.items()):
            g.add_metric([addr], float(wei))
        yield g
        c = CounterMetricFamily("copytrade_channel_errors", "Detection channel errors (RPC/websocket), per channel",
                                labels=["channel"])
        for ch in sup.channels:
            c.add_metric([ch.name_], ch.errors)
        yield c
        for kind, name, doc, value in sup.coord.stats():
            fam = GaugeMetricFamily(name, doc) if kind == "gauge" else CounterMetricFamily(name, doc)
            fam.add_metric([], value)
            yield fam


def _safe(fn, default):
    try:
        return fn()
    except Exception:  # noqa: BLE001 — a scrape must never fail on one source
        return default


# --- health ---------------------------------------------------------------------------------------------

def health_dir(settings) -> Path:
    """Where instances without Redis write their health files."""
    return Path(settings.home) / "health"


def write_health_file(settings, instance: str, doc: dict[str, Any]) -> None:
    """Atomically replace this instance's health file."""
    d = health_dir(settings)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{instance}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # NOTE: it names workers: owner only
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(doc).encode())
    finally:
        os.close(fd)
    os.replace(tmp, d / f"{instance}.json")


def clear_health_file(settings, instance: str) -> None:
    """Remove this instance's health file (clean shutdown)."""
    try:
        (health_dir(settings) / f"{instance}.json").unlink()
    except FileNotFoundError:
        pass


def read_health_files(settings) -> list[dict[str, Any]]:
    """Health documents of instances that refreshed within their TTL (older files are ignored)."""
    out = []
    d = health_dir(settings)
    if not d.is_dir():
        return out
    now = time.time()
    for p in sorted(d.glob("*.json")):
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        age_ms = (now - float(doc.get("ts", 0))) * 1000
        if age_ms <= float(doc.get("ttl_ms", 0)):
            out.append({**doc, "ttl_ms": int(doc.get("ttl_ms", 0) - age_ms)})
    return out


def check_health(settings) -> tuple[bool, list[dict[str, Any]], str]:
    """(healthy, instances, summary): healthy when at least one instance reports and every one says "ok"."""
    if settings.redis:
        from .coordination.redis_ops import read_health

        docs = read_health(settings)
        where = "Redis"
    else:
        docs = read_health_files(settings)
        where = str(health_dir(settings))
    if not docs:
        return False, [], f"no live supervisor instance reports health in {where}"
    bad = [d for d in docs if d.get("status") != "ok"]
    if bad:
        return False, docs, (f"{len(bad)} of {len(docs)} instance(s) not ok: "
                             + ", ".join(f"{d.get('instance')} {d.get('status')}" for d in bad))
    return True, docs, f"{len(docs)} instance(s) ok"


# --- structured logs ------------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus the instance's identity and any `extra` fields."""

    def __init__(self, static: dict[str, Any] | None = None):
        super().__init__()
        self.static = static or {}

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage(), **self.static}
        for k in ("group", "step", "channel", "event"):
            if hasattr(record, k):
                doc[k] = getattr(record, k)
        if record.exc_text:  # NOTE: set (and redacted) by RedactingFilter: a traceback often embeds a URL
            doc["exc"] = record.exc_text
        elif record.exc_info:
            doc["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(doc, default=str, ensure_ascii=False)


def setup_json_logging(stream, static: dict[str, Any], secrets: Iterable[str] = ()) -> None:
    """Route every copytrade log record to `stream` as JSON lines (info and above), each redacted first
    (`secrets` masked, URL paths and passwords cut: copytrade_cli.redact)."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(JsonFormatter(static))
    root = logging.getLogger("copytrade")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
