"""Coordination of supervisor instances: `choose()` picks local (in process + SQLite) or Redis once."""
from .base import Coordination, choose

__all__ = ["Coordination", "choose"]
