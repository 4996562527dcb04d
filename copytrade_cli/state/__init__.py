"""The SQLite state file (sqlite-utils, WAL, recorded migrations): `State` and its records."""
from .store import Deployment, Follow, NodeRecord, ProxyRecord, State, now_iso, open_state

__all__ = ["Deployment", "Follow", "NodeRecord", "ProxyRecord", "State", "now_iso", "open_state"]
