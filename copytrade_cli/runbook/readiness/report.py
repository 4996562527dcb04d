"""A readiness report: rows with what was found and how to fix it, and the helpers every row is built with."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ...errors import ConfigError
from ...redact import redact_url as _redact_url

REQUIRED = "required"
WARNING = "warning"
MIN_WORKER_GAS_WEI = 10**16  # 0.01 POL: the same floor `Fleet.status` uses to call a worker ready
MIN_PROXY_MICRO = 10**6  # 1 USDC: below it a follower's copies are all skipped for lack of funds
MIN_ALLOWANCE_MICRO = 10**12  # 1M USDC: "approved" means an allowance no realistic day of trading exhausts
HTTP_TIMEOUT_S = 3.0
SHOWN = 3  # failing items named in a row's detail before "and N more"


@dataclass
class Check:
    """One readiness row: what was checked, whether it passed, and how to fix it when it did not."""

    name: str
    ok: bool
    severity: str
    detail: str
    fix: str | None = None


@dataclass
class Report:
    """All rows; `ready` is True when every required row passes (warnings never block)."""

    ready: bool
    checks: list[Check]
    network: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape: {"ready", "checks": [{"name", "ok", "severity", "detail", "fix"}]}."""
        return {"ready": self.ready, "checks": [asdict(c) for c in self.checks]}

    def failing(self, severity: str | None = None) -> list[Check]:
        """Rows that did not pass (optionally of one severity)."""
        return [c for c in self.checks if not c.ok and (severity is None or c.severity == severity)]

    def summary(self) -> str:
        """One line: ready, or which required rows fail."""
        warnings = len(self.failing(WARNING))
        if self.ready:
            n = sum(c.severity == REQUIRED for c in self.checks)
            return f"ready: all {n} required checks pass on {self.network} ({warnings} warning(s))"
        names = ", ".join(c.name for c in self.failing(REQUIRED))
        return (f"not ready on {self.network or 'the configured network'}: {names} failed; run "
                f"`copytrade verify readiness` "
                f"for how to fix each")


def config_failed(error: ConfigError) -> Report:
    """The report when the configuration itself does not parse (nothing else can be checked)."""
    return Report(False, [Check("config", False, REQUIRED, str(error),
                                "fix the named variable in the environment, .env or config.toml "
                                "(`copytrade config show` lists them)")])


def passed(name: str, detail: str, severity: str = REQUIRED) -> Check:
    """A row that passed."""
    return Check(name, True, severity, detail)


def failed(name: str, detail: str, fix: str, severity: str = REQUIRED) -> Check:
    """A row that failed, with how to fix it."""
    return Check(name, False, severity, detail, fix)


def short(address: str) -> str:
    """0x1234...abcd: enough of an address to find it in a row's detail."""
    return f"{address[:6]}...{address[-4:]}"


def some_of(items: list[str]) -> str:
    """The first few failing items, then "and N more"."""
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return "; ".join(items[:SHOWN]) + more


redact_url = _redact_url  # one redaction for the project (copytrade_cli.redact)
