"""``VirtualClock`` for tests (it lives in ``adurable.local``; re-exported here).

The service reads time exclusively from the clock it owns, so a test can run a seven-day wait
in microseconds and get the same timestamps on every run. There is no global clock.
"""

from __future__ import annotations

from adurable.local._clock import DEFAULT_START, VirtualClock

__all__ = ("DEFAULT_START", "VirtualClock")
