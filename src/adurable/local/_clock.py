"""Clocks of the local engine: virtual time that jumps, and wall time.

Every engine (and every ``FakeService``) owns its clock; there is no global one. The service
reads ``now()`` for every timestamp it records and every timer it arms. The scheduler waits on
the clock with ``await clock.sleep_until(t, wake)``:

* ``VirtualClock`` never moves by itself. The scheduler only sleeps on it when nothing can run,
  so ``sleep_until`` *jumps* straight to ``t`` and returns at once (with ``t`` None — nothing
  scheduled — it waits for ``wake``). A week-long wait costs no wall-clock time and gives the
  same timestamps on every run.
* ``RealClock`` is ``time.time()``; ``sleep_until`` really sleeps, and returns early when
  ``wake`` is set (new work arrived: an invocation, a callback, a stop).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel

__all__ = ("DEFAULT_START", "Clock", "RealClock", "VirtualClock")

#: 2026-01-01T00:00:00Z — a fixed, recognisable default start for virtual time.
DEFAULT_START = 1_767_225_600.0


@runtime_checkable
class Clock(Protocol):
    """What the engine needs from a clock (epoch seconds)."""

    #: True for clocks that jump instead of waiting (virtual time).
    virtual: bool

    def now(self) -> float:
        """Current time in epoch seconds."""
        ...

    def now_datetime(self) -> dt.datetime:
        """Current time as an aware UTC datetime."""
        ...

    async def sleep_until(self, t: float | None, wake: anyio.Event) -> None:
        """Return once time ``t`` is reached (None: never) or as soon as ``wake`` is set."""
        ...


class VirtualClock:
    """Epoch-seconds time under the program's control.

    ``advance`` moves forward by a duration, ``advance_to`` jumps to an instant and is a no-op
    when that instant is already in the past (time never goes backwards).
    """

    virtual = True

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

    async def sleep_until(self, t: float | None, wake: anyio.Event) -> None:
        """Jump to ``t`` and return (after yielding once); with ``t`` None wait for ``wake``."""
        if t is None:
            await wake.wait()
            return
        self.advance_to(t)
        await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"VirtualClock({self._now!r})  # {self.now_datetime().isoformat()}"


class RealClock:
    """Wall-clock time (``time.time()``); ``sleep_until`` really waits."""

    virtual = False

    def now(self) -> float:
        """Current time in epoch seconds."""
        return time.time()

    def now_datetime(self) -> dt.datetime:
        """Current time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.now(), tz=dt.UTC)

    async def sleep_until(self, t: float | None, wake: anyio.Event) -> None:
        """Sleep until ``t`` (forever with None), or less if ``wake`` is set meanwhile."""
        delay = None if t is None else max(0.0, t - self.now())
        with anyio.move_on_after(delay):
            await wake.wait()

    def __repr__(self) -> str:
        return "RealClock()"
