"""Fault suite fixtures live in tests/integration/conftest.py; the session-wide summary line (faults injected,
jobs checked, duplicates, losses) is printed by tests/conftest.py from tests/faults/ledger.py."""
