"""One exception tree for the whole toolkit; every message says what to do next.

The CLI maps these to a one-line red message and an exit code (see `EXIT_CODES`); a traceback is
shown only when `COPYTRADE_DEBUG=1`.
"""
from __future__ import annotations


class CopytradeError(Exception):
    """Root of every error the toolkit raises on purpose."""

    exit_code = 1


class ConfigError(CopytradeError):
    """A setting is missing or has a bad value."""

    exit_code = 2


class UsageError(CopytradeError):
    """The command was called with arguments that cannot work together."""

    exit_code = 2


class StateError(CopytradeError):
    """The state file is unreadable, from a newer version, or lacks a record the command needs."""

    exit_code = 3


class NodeError(CopytradeError):
    """The local node could not be started, stopped or reached."""

    exit_code = 4


class ChainError(CopytradeError):
    """An RPC call or transaction failed (node down, revert, wrong chain)."""

    exit_code = 4


class DeploymentError(CopytradeError):
    """A contract is missing, not deployed where recorded, or a deploy failed."""

    exit_code = 5


class FundsError(CopytradeError):
    """An account or proxy lacks the funds or approvals an action needs."""

    exit_code = 6


class OutOfGasError(FundsError):
    """A sender (a worker, the funder) has too little native gas to send a transaction: refuel, then retry."""


class ClobError(CopytradeError):
    """The CLOB refused or could not be reached."""

    exit_code = 7


class NotReadyError(CopytradeError):
    """A readiness check failed."""

    exit_code = 8


class NotBuiltError(CopytradeError):
    """The command exists in the plan but is not built yet."""

    exit_code = 9


EXIT_CODES = {
    0: "success",
    1: "unexpected error (rerun with COPYTRADE_DEBUG=1 for a traceback)",
    2: "bad configuration or usage",
    3: "state file problem",
    4: "node or chain problem",
    5: "deployment problem",
    6: "insufficient funds or approvals",
    7: "CLOB problem",
    8: "not ready",
    9: "not built yet",
}
