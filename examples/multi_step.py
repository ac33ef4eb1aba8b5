"""Multi-step workflow: validate, process, cool down, notify (the guide's first pattern)."""

from __future__ import annotations

from typing import Any

import anyio

from adurable import DurableContext, Duration, StepContext, durable_execution, durable_step


@durable_step
def validate_input(step: StepContext, event: dict[str, Any]) -> dict[str, Any]:
    if "user_id" not in event:
        raise ValueError("user_id is required")
    return {"user_id": event["user_id"]}


@durable_step
async def process_data(step: StepContext, data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "score": len(data["user_id"]) * 10}


@durable_step
async def send_notification(step: StepContext, data: dict[str, Any]) -> str:
    step.logger.info("notifying %s", data["user_id"])
    return f"sent to {data['user_id']}"


@durable_execution
async def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    validated = await context.step(validate_input(event), name="validate")
    processed = await context.step(process_data(validated), name="process")
    await context.wait(Duration.from_seconds(30), name="cooldown")
    await context.step(send_notification(processed), name="notify")
    return {"success": True, "data": processed}


async def main() -> None:
    from adurable.testing import LocalRunner

    result = await LocalRunner(handler).run(input={"user_id": "u-123"})
    print(result.status, result.result)


if __name__ == "__main__":
    anyio.run(main)
