"""Prefect flows and deployments: the only place that imports Prefect."""

import os

# With analytics on, a local Prefect server logs "database is locked" from its
# telemetry task. Set here, before any flow module imports Prefect.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
