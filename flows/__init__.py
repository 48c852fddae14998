"""Prefect flows and deployments: the only place that imports Prefect.

Orchestration only: each task body is one call into ``pipeline``,
``selection``, ``warehouse`` or ``training``. ``refresh`` runs the stage list
of :mod:`pipeline.refresh_stages` through the one runner (compute on the task
runner: threads, or Dask workers that share nothing but object storage;
writes in the flow process), ``selection_flow`` selects, reports and
announces, ``training_flow`` trains on an announced selection, ``deployments``
wires them with a schedule and triggers, ``demo`` runs all three offline.
``ingest_options`` holds the refresh's options, shared by ``talkface refresh``
and ``talkface deploy`` (the scheduled refresh runs with them).
"""

import os

# With analytics on, a local Prefect server logs "database is locked" from its
# telemetry task. Set here, before any flow module imports Prefect.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
