"""Options shared by the commands, defined once as `Annotated` aliases; the ones with a fixed set of values are
enums that Typer checks while parsing (before a command opens the state file or touches a chain).

A bad value stops the command with the same one-line error the library would give (`Error: --sizing 'kelly':
use one of fixed, proportional, percent`, exit 2): the enums spell their values as the library and the state
file do, and a test checks them against the library's own lists. Only `enum`, `typing` and `typer` are
imported here, so `copytrade --help` stays fast.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Callable, TypeVar

import typer

E = TypeVar("E", bound="Choice")


class Choice(str, Enum):
    """An option's accepted values; `str()` is the value, as the library and the state file spell it."""

    def __str__(self) -> str:
        return self.value


class Sizing(Choice):
    """How a follow sizes each copy (`--sizing`)."""

    FIXED = "fixed"
    PROPORTIONAL = "proportional"
    PERCENT = "percent"


class SellMode(Choice):
    """What a follow does with the leader's sells (`--sells`)."""

    PROPORTIONAL = "proportional"
    IGNORE = "ignore"


class SideFilter(Choice):
    """Which of the leader's sides a follow copies (`follow add --side`)."""

    BOTH = "BOTH"
    BUY = "BUY"
    SELL = "SELL"


class TradeSide(Choice):
    """The side of a leader trade made on the fork (`trade ... --side`)."""

    BUY = "BUY"
    SELL = "SELL"


class Flow(Choice):
    """How a copy executes (`--flow`): pull, order, push; or the worker's Smart Buffer float."""

    STANDARD = "standard"
    BUFFER = "buffer"


class AddressFormat(Choice):
    """Output of `deploy addresses --format`."""

    TABLE = "table"
    JSON = "json"
    ENV = "env"


class ExportFormat(Choice):
    """Output of `migrate users --format`."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class Channel(Choice):
    """A detection channel of the supervisor (`supervise --channels`)."""

    MEMPOOL = "mempool"
    LOGS = "logs"
    ACTIVITY = "activity"
    DATA_API = "data_api"


def bad_value(text: str) -> typer.Exit:
    """Print the one-line usage error of a bad option value (as `handle_errors` would) and give the exit to raise.

    NOTE: values are checked while Typer parses, before the command (and its `handle_errors`) runs, so the
    line is printed here; the exit code is `UsageError`'s. Imported here, not at the top: `common` imports
    this module for its aliases."""
    from .common import emit_error

    emit_error(text)
    return typer.Exit(2)


def _one_of(enum: type[E], option: str, hint: str | None = None, *,
            spelling: Callable[[str], str] = str) -> Callable[[str], E]:
    """A Typer parser: the member spelled by the value (after `spelling`), else the one-line error naming the
    option."""
    hint = hint or f"use one of {', '.join(m.value for m in enum)}"

    def parse(value: str | E) -> E:
        if isinstance(value, enum):
            return value
        text = spelling(str(value))
        try:
            return enum(text)
        except ValueError:
            raise bad_value(f"{option} {text!r}: {hint}") from None

    return parse


class Channels(tuple):
    """The detection channels of one `supervise` run, in the order given (`--channels mempool,logs`)."""

    @classmethod
    def parse(cls, value: "str | Channels") -> "Channels":
        """`mempool,logs` -> (Channel.MEMPOOL, Channel.LOGS); a bad or empty list is the one-line error."""
        if isinstance(value, Channels):
            return value
        names = [x.strip() for x in value.split(",") if x.strip()]
        if not names or any(n not in Channel._value2member_map_ for n in names):
            raise bad_value(f"--channels {value!r}: use a comma list of {', '.join(c.value for c in Channel)}")
        return cls(Channel(n) for n in names)

    def __str__(self) -> str:  # as typed on the command line (the default shown in --help and the docs)
        return ",".join(c.value for c in self)


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
NetworkOpt = Annotated[str | None, typer.Option("--network", "-n", help="Network: polygon:local (fork), polygon:mainnet, polygon:amoy.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print what would happen; change nothing.")]

SizingOpt = Annotated[Sizing, typer.Option("--sizing", parser=_one_of(Sizing, "--sizing"),
                                           help="fixed (USD), proportional (x leader notional), percent (of proxy balance).")]
SellsOpt = Annotated[SellMode, typer.Option("--sells", parser=_one_of(SellMode, "--sells"),
                                            help="proportional (to the position held) or ignore.")]
SideFilterOpt = Annotated[SideFilter, typer.Option("--side", parser=_one_of(SideFilter, "--side", spelling=str.upper),
                                                   help="BOTH, BUY or SELL.")]
# NOTE: a trade's side was always read leniently (" sell" works); a follow's side filter only upper-cased
TradeSideOpt = Annotated[TradeSide, typer.Option("--side", parser=_one_of(TradeSide, "--side",
                                                                          spelling=lambda v: v.strip().upper()),
                                                 help="BUY or SELL.")]
FlowOpt = Annotated[Flow, typer.Option("--flow", parser=_one_of(Flow, "--flow"),
                                       help="standard (pull, order, push) or buffer (Smart Buffer).")]
AddressFormatOpt = Annotated[AddressFormat, typer.Option("--format", parser=_one_of(AddressFormat, "--format",
                                                                                    "use table, json or env"),
                                                         help="table, json or env.")]
ExportFormatOpt = Annotated[ExportFormat, typer.Option("--format", parser=_one_of(ExportFormat, "--format",
                                                                                  "use table, csv or json"),
                                                       help="table, csv or json.")]
ChannelsOpt = Annotated[Channels, typer.Option("--channels", parser=Channels.parse, metavar="CHANNEL,...",
                                                help="Comma list of mempool, logs, activity, data_api.")]
