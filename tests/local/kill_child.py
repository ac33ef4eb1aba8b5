"""Child process of the kill test: start executions on a SQLite file, report, wait to be killed.

Usage: python -m tests.local.kill_child DB — prints one JSON line with the ARNs once the
napper waits on its timer, the approver on its callback and the worker is stuck in its step.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
from tests.local import apps

from adurable.local import LocalEngine, SqliteStore


async def main(db: str) -> None:
    os.environ[apps.BLOCK_ENV] = "1"
    engine = LocalEngine(store=SqliteStore(db), clock=apps.FrozenClock())
    for name in ("napper", "approver", "worker"):
        engine.register(name, getattr(apps, name))
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run)
        arns = {}
        for name in ("napper", "approver", "worker"):
            result = await engine.invoke(f"{name}:1", b'{"n": 1}', invocation_type="Event")
            arns[name] = result.durable_execution_arn
        service = engine.service
        while not (
            apps.waiting_on_the_world(service, arns["napper"])
            and apps.waiting_on_the_world(service, arns["approver"])
            and apps.step_started(service, arns["worker"])
        ):
            await engine.scheduler.changed().wait()
        sys.stdout.write(json.dumps(arns) + "\n")
        sys.stdout.flush()
        await anyio.sleep_forever()  # until SIGKILL


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
