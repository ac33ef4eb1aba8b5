"""``wait``: a durable timer (PROTOCOL §7.3).

id → lookup → SUCCEEDED: return; missing: START (sync) and re-check; otherwise suspend. The
service completes the wait at StartTimestamp + WaitSeconds and re-invokes the handler.
"""

from __future__ import annotations

from adurable._enums import OperationAction, OperationStatus, OperationSubType, OperationType
from adurable._scope import Scope


async def run_wait(scope: Scope, op_id: str, seconds: int, name: str | None) -> None:
    wanted = scope.identity(OperationType.WAIT, OperationSubType.WAIT, name)
    stored = scope.lookup(op_id, wanted)
    flip = scope.before_operation(stored)
    try:
        if stored is None:
            start = scope.update(
                op_id,
                wanted,
                action=OperationAction.START,
                wait_options={"WaitSeconds": int(seconds)},
            )
            await scope.checkpoint(start, sync=True)
            stored = scope.journal.get(op_id)
        if stored is not None and stored.status is OperationStatus.SUCCEEDED:
            return
        # The SDK re-suspends for the requested duration; the service owns the real timer.
        await scope.suspend_for(f"wait {name or op_id!r} for {seconds} s", seconds)
    finally:
        scope.after_operation(flip)
