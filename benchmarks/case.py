"""Run one benchmark case in this process and print its measurements as one JSON line.

``python -m benchmarks.case '<json spec>'`` (from the repository root, with the interpreter of
the SDK under test). ``benchmarks/run.py`` starts a fresh process per case and run; tests call
:func:`run_case` directly with tiny sizes.

Spec keys: ``sdk`` ("adurable", "official" or "none"), ``workload`` (map, sequential, replay,
parallel, one_step, floor_asyncio, floor_anyio, floor_fake), ``n``, and optionally
``concurrency`` (max_concurrency; null = unbounded), ``nesting`` (NESTED/FLAT), ``latency``
(seconds added to every checkpoint call), ``spawned_at`` (time.time() when the parent started
this process: gives the time to the first checkpoint from process start).
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import hashlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks.driver import LambdaContext, drive  # noqa: E402
from benchmarks.fake import AsyncClient, FakeService, SyncClient, network_delay  # noqa: E402


def _op_id(position: int) -> str:
    """Root operation id at ``position`` (PROTOCOL §5.1), to preload the replay workload."""
    return hashlib.blake2b(str(position).encode()).hexdigest()[:64]


def expected(workload: str, n: int) -> dict[str, int]:
    if workload == "parallel":
        return {"ok": n, "sum": n}
    if workload == "one_step":
        return {"ok": 1, "sum": 1}
    return {"ok": n, "sum": n * (n - 1) // 2}


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` once; returns wall/cpu seconds, peak RSS and the fake's counters."""
    sdk, workload, n = spec["sdk"], spec["workload"], spec.get("n", 0)
    if sdk == "none":
        return _run_floor(workload, n, spec.get("latency") or 0.0)
    t_import = time.perf_counter()
    if sdk == "adurable":
        from benchmarks import workloads_adurable as workloads

        client_cls: Any = AsyncClient
    elif sdk == "official":
        from benchmarks import workloads_official as workloads  # type: ignore[no-redef]

        client_cls = SyncClient
    else:
        raise ValueError(f"unknown sdk {sdk!r}")
    import_s = time.perf_counter() - t_import

    service = FakeService(latency=spec.get("latency") or 0.0)
    service.start({"n": n})
    if workload == "replay":
        service.preload_steps([(_op_id(i + 1), str(i)) for i in range(n)])
    handler = workloads.make_handler(workload, spec, client_cls(service))
    rss_before = _peak_rss_mb()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    output, invocations = drive(handler, service, LambdaContext())
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    result = json.loads(output["Result"]) if output.get("Result") else None
    if output["Status"] != "SUCCEEDED" or result != expected(workload, n):
        raise RuntimeError(f"{sdk} {workload}: unexpected output {output!r}")
    measured: dict[str, Any] = {
        "wall": wall,
        "cpu": cpu,
        "import": import_s,
        "rss_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before,
        "invocations": invocations,
        **service.stats(),
    }
    if spec.get("spawned_at") is not None and service.first_checkpoint_at is not None:
        measured["first_checkpoint"] = service.first_checkpoint_at - spec["spawned_at"]
        measured["since_main"] = time.perf_counter() - _T0
    return measured


def _run_floor(workload: str, n: int, latency: float = 0.0) -> dict[str, Any]:
    """The same fan-out with no SDK at all: how close to the floor are we?"""
    prepared = _nested_map_calls(n) if workload == "floor_fake" and latency else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    extra: dict[str, Any] = {}
    if workload == "floor_asyncio":
        import asyncio

        async def value(i: int) -> int:
            return i

        async def item(i: int) -> int:
            return await value(i)

        async def main() -> int:
            return sum(await asyncio.gather(*(item(i) for i in range(n))))

        total = asyncio.run(main())
    elif workload == "floor_anyio":
        import anyio

        async def main_anyio() -> int:
            results = [0] * n

            async def item_anyio(i: int) -> None:
                results[i] = i

            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(item_anyio, i)
            return sum(results)

        total = anyio.run(main_anyio)
    elif workload == "floor_fake":
        if latency:
            import anyio

            assert prepared is not None
            total, extra = anyio.run(_feed_fake_delayed, prepared, latency)
        else:
            total, extra = _feed_fake(n)
    else:
        raise ValueError(f"unknown floor workload {workload!r}")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if total != n * (n - 1) // 2:
        raise RuntimeError(f"floor {workload}: wrong total {total}")
    return {"wall": wall, "cpu": cpu, "rss_mb": _peak_rss_mb(), **extra}


def _feed_fake(n: int) -> tuple[int, dict[str, Any]]:
    """The fake alone, fed the updates of a NESTED map of ``n`` one-step items in calls of 250:
    the share of a map's time that is the fake service's (plus building the update dicts)."""
    service, arn, token, calls, total = _nested_map_calls(n)
    for updates in calls:
        token = service.checkpoint(DurableExecutionArn=arn, CheckpointToken=token, Updates=updates)[
            "CheckpointToken"
        ]
    return total, service.stats()


async def _feed_fake_delayed(
    prepared: tuple[FakeService, str, str, list[list[dict[str, Any]]], int], latency: float
) -> tuple[int, dict[str, Any]]:
    """``_feed_fake`` with each call delayed like adurable's (``fake.network_delay``) and the
    updates built beforehand: the latency-bound map's floor, the harness's own overhead."""
    service, arn, token, calls, total = prepared
    for updates in calls:
        await network_delay(latency)
        token = service.checkpoint(DurableExecutionArn=arn, CheckpointToken=token, Updates=updates)[
            "CheckpointToken"
        ]
    return total, service.stats()


def _nested_map_calls(n: int) -> tuple[FakeService, str, str, list[list[dict[str, Any]]], int]:
    """A started fake and the updates of a NESTED map of ``n`` one-step items, cut in 250s."""
    service = FakeService()
    service.start({"n": n})
    event = service.invocation_event()
    arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
    map_id = _op_id(1)
    updates: list[dict[str, Any]] = [
        {"Id": map_id, "Type": "CONTEXT", "Action": "START", "SubType": "Map"}
    ]
    total = 0
    for i in range(n):
        bid = hashlib.blake2b(f"{map_id}-{i}".encode()).hexdigest()[:64]
        sid = hashlib.blake2b(f"{bid}-1".encode()).hexdigest()[:64]
        name = f"map-item-{i}"
        base = {"Id": bid, "ParentId": map_id, "Name": name, "Type": "CONTEXT"}
        updates.append({**base, "Action": "START", "SubType": "MapIteration"})
        updates.append({"Id": sid, "ParentId": bid, "Type": "STEP", "Action": "START",
                        "SubType": "Step"})  # fmt: skip
        updates.append({"Id": sid, "ParentId": bid, "Type": "STEP", "Action": "SUCCEED",
                        "SubType": "Step", "Payload": str(i)})  # fmt: skip
        updates.append({**base, "Action": "SUCCEED", "SubType": "MapIteration", "Payload": str(i),
                        "ContextOptions": {"ReplayChildren": False}})  # fmt: skip
        total += i
    updates.append({"Id": map_id, "Type": "CONTEXT", "Action": "SUCCEED", "SubType": "Map",
                    "Payload": "", "ContextOptions": {"ReplayChildren": True}})  # fmt: skip
    calls = [updates[start : start + 250] for start in range(0, len(updates), 250)]
    return service, arn, token, calls, total


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps(run_case(spec)))


if __name__ == "__main__":
    main()
