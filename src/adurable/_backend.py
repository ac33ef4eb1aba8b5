"""The one place that knows which event loop runs (the backend adapter of the layering rules).

Everything else uses anyio. This module names the running library and makes one hot primitive
cheaper where anyio's portable version costs more than the work it guards:

* :func:`current_backend` names the running library (the service client picks its HTTP
  session by it).
* :func:`signal_factory` gives the class of one-shot signal the checkpoint batcher creates per
  call: set once when the call's answer is merged, awaited by every task whose update rode in
  it (up to hundreds per call in a fan-out). On asyncio, ``anyio.Event`` wraps
  ``asyncio.Event``: each waiter costs two coroutine frames, a lookup of the running loop and a
  removal from the waiters' deque. :class:`AsyncioSignal` binds the loop once and gives each
  waiter a bare future of its own (awaited without a coroutine frame), so cancelling one
  waiter cancels nothing else. Any other backend (trio) gets anyio's own ``Event`` class.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

import anyio
import anyio.lowlevel

__all__ = ("AsyncioSignal", "Signal", "current_backend", "signal_factory")


def current_backend() -> str:
    """The running async library: ``"asyncio"`` or ``"trio"`` (sniffio)."""
    try:
        import sniffio
    except ImportError:  # trio depends on sniffio: without it this can only be asyncio
        return "asyncio"
    return sniffio.current_async_library()


class Signal(Protocol):
    """Set once; ``await wait()`` returns once it is set (at once if it already is)."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self) -> Any: ...


class AsyncioSignal:
    """:class:`Signal` on asyncio: a future per waiter from a loop bound once."""

    __slots__ = ("_flag", "_loop", "_waiters")

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._flag = False
        self._waiters: list[Any] = []

    def set(self) -> None:
        if self._flag:
            return
        self._flag = True
        for future in self._waiters:
            if not future.done():
                future.set_result(None)
        self._waiters.clear()

    def is_set(self) -> bool:
        return self._flag

    def wait(self) -> _Wait:
        return _Wait(self)


class _Wait:
    """The awaitable of ``AsyncioSignal.wait`` (a plain iterator: no coroutine frame)."""

    __slots__ = ("_signal",)

    def __init__(self, signal: AsyncioSignal) -> None:
        self._signal = signal

    def __await__(self) -> Generator[Any, None, None]:
        signal = self._signal
        if signal._flag:
            # Already set: still a scheduling point, as anyio.Event.wait is.
            yield from anyio.lowlevel.checkpoint().__await__()
            return
        future = signal._loop.create_future()
        signal._waiters.append(future)  # a cancelled waiter's future stays until set(): done
        try:
            yield from future.__await__()
        finally:
            if not future.done():  # left some other way than cancellation or set()
                future.cancel()


def signal_factory() -> Callable[[], Signal]:
    """A zero-argument constructor of :class:`Signal` for the running event loop (call it from
    inside the loop; the result is only valid on that loop)."""
    event_class: type[anyio.Event] = type(anyio.Event())
    if event_class.__module__ == "anyio._backends._asyncio":
        import asyncio

        loop = asyncio.get_running_loop()
        return lambda: AsyncioSignal(loop)
    return event_class
