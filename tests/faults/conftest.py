"""Fault suite: the session-wide summary line (faults injected, jobs checked, duplicates, losses)."""
from __future__ import annotations

import pytest

from .ledger import LEDGER


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    kinds = sorted(set(LEDGER["kinds"]))
    terminalreporter.write_sep("=", "fault suite summary")
    terminalreporter.write_line(
        f"FAULT SUMMARY: faults injected {LEDGER['faults']}, jobs checked {LEDGER['jobs']}, "
        f"duplicates found {LEDGER['duplicates']}, losses found {LEDGER['losses']}"
        + (f"  ({', '.join(kinds)})" if kinds else ""))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if LEDGER["duplicates"] or LEDGER["losses"]:
        session.exitstatus = 1
