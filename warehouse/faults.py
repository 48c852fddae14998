"""Named fault points, so that a test can kill a process exactly where a write happens.

Production code marks the moments that matter for durability (just before and
just after each commit of a stage, inside a checkpoint write) with
:func:`fault_point`. Normally it does nothing. With ``TALKFACE_FAULT=<point>``
(or ``<point>:<n>`` for the n-th arrival) in the environment, the process
SIGKILLs itself there: no handler runs and nothing is flushed, as when a
machine dies. A fault test is then deterministic instead of racing a timer.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

FAULT_ENV = "TALKFACE_FAULT"

_arrivals: Counter[str] = Counter()  # per process: how often each point was reached


def fault_point(name: str) -> None:
    """SIGKILL this process if ``$TALKFACE_FAULT`` names this point (and this arrival)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _arrivals[name] += 1
    if _arrivals[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
