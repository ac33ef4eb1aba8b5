"""A clock that moves only when told to.

The fake service reads time exclusively from a ``VirtualClock`` it owns, so a test can run a
seven-day wait in microseconds and get the same timestamps on every run. There is no global
clock and no wall-clock fallback: every ``FakeService`` has its own instance.
"""

from __future__ import annotations

import datetime as dt

__all__ = ("VirtualClock",)

#: 2026-01-01T00:00:00Z — a fixed, recognisable default start.
DEFAULT_START = 1_767_225_600.0


class VirtualClock:
    """Epoch-seconds time under the test's control.

    ``advance`` moves forward by a duration, ``advance_to`` jumps to an instant and is a no-op
    when that instant is already in the past (time never goes backwards).
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = float(start)

    def now(self) -> float:
        """Current time in epoch seconds."""
        return self._now

    def now_datetime(self) -> dt.datetime:
        """Current time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self._now, tz=dt.UTC)

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (which must not be negative)."""
        if seconds < 0:
            raise ValueError(f"cannot advance a VirtualClock by a negative amount ({seconds!r} s)")
        self._now += float(seconds)

    def advance_to(self, t: float) -> None:
        """Jump to epoch second ``t``; does nothing if ``t`` is not in the future."""
        if t > self._now:
            self._now = float(t)

    def __repr__(self) -> str:
        return f"VirtualClock({self._now!r})  # {self.now_datetime().isoformat()}"
