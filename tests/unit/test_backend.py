"""The backend adapter's per-call signal behaves as anyio.Event does, on asyncio and trio."""

from __future__ import annotations

import anyio
import pytest

from adurable._backend import AsyncioSignal, current_backend, signal_factory

pytestmark = pytest.mark.anyio


async def test_the_factory_fits_the_running_loop(anyio_backend_name: str) -> None:
    signal = signal_factory()()
    assert isinstance(signal, AsyncioSignal) == (anyio_backend_name == "asyncio")
    assert current_backend() == anyio_backend_name


async def test_every_waiter_wakes_once_set_and_a_late_one_at_once() -> None:
    signal = signal_factory()()
    woken: list[int] = []

    async def waiter(i: int) -> None:
        await signal.wait()
        woken.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(waiter, i)
        await anyio.wait_all_tasks_blocked()
        assert woken == [] and not signal.is_set()
        signal.set()
        signal.set()  # idempotent
    assert sorted(woken) == list(range(50)) and signal.is_set()
    with anyio.fail_after(1):  # a guard: a set signal returns at once
        await signal.wait()


async def test_a_cancelled_waiter_leaves_the_others_waiting() -> None:
    signal = signal_factory()()
    woken: list[str] = []

    async def waiter(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await signal.wait()
            woken.append(name)

    doomed, kept = anyio.CancelScope(), anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "doomed", doomed)
        tg.start_soon(waiter, "kept", kept)
        await anyio.wait_all_tasks_blocked()
        doomed.cancel()
        await anyio.wait_all_tasks_blocked()
        assert woken == []
        signal.set()
    assert woken == ["kept"]
