"""Where the warehouse lives when no --warehouse is given (no heavy imports here)."""

from __future__ import annotations

import os

WAREHOUSE_ENV = "TALKFACE_WAREHOUSE"
DEFAULT_WAREHOUSE = "talkface-warehouse"


def default_warehouse_uri() -> str:
    """``$TALKFACE_WAREHOUSE`` if set, else ``./talkface-warehouse``."""
    return os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE
