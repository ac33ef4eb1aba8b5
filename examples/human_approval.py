"""Human in the loop: generate a plan, wait (up to a day) for an approver's callback, act on it.

The execution suspends while it waits, costing nothing; the approval system completes the
callback with SendDurableExecutionCallbackSuccess and the handler resumes.
"""

from __future__ import annotations

from typing import Any

import anyio

from adurable import (
    DurableContext,
    Duration,
    StepContext,
    WaitForCallbackConfig,
    durable_execution,
    durable_step,
)

outbox: list[tuple[str, str]] = []  # (approver, callback id): stands in for an email service


@durable_step
def generate_plan(step: StepContext, event: dict[str, Any]) -> str:
    return f"deploy {event['service']} to production"


@durable_execution
async def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    plan = await context.step(generate_plan(event), name="generate-plan")

    def submit_approval(callback_id: str, ctx: Any) -> None:
        outbox.append((event["approver_email"], callback_id))

    answer = await context.wait_for_callback(
        submit_approval,
        name="wait-for-approval",
        config=WaitForCallbackConfig(timeout=Duration.from_hours(24)),
    )
    if answer == '"APPROVED"':  # callbacks hand back the raw JSON text by default
        await context.step(lambda _: f"executed: {plan}", name="execute")
        return {"status": "completed", "plan": plan}
    return {"status": "rejected", "plan": plan}


async def main() -> None:
    from adurable.testing import LocalRunner

    runner = LocalRunner(handler)
    waiting = await runner.run(input={"service": "billing", "approver_email": "lead@example.com"})
    print("while waiting:", waiting.status)
    _, callback_id = outbox[-1]
    runner.service.send_callback_success(callback_id, b'"APPROVED"')
    result = await runner.resume(waiting.arn)
    print(result.status, result.result)


if __name__ == "__main__":
    anyio.run(main)
