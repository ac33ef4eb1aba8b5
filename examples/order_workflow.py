"""Order workflow: validate, reserve stock with retries, wait, charge, confirm.

Run it on the embedded local engine (virtual time, so the wait costs nothing):

    python examples/order_workflow.py

Deployed to Lambda, ``handler`` is the function's handler as it is.
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from adurable import (
    DurableContext,
    Duration,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
    durable_step,
)

_reservation_attempts: dict[str, int] = {}


@durable_step
def validate(step: StepContext, order: dict[str, Any]) -> dict[str, Any]:
    if not order.get("items"):
        raise ValueError("an order needs at least one item")
    total = sum(item["price"] * item["qty"] for item in order["items"])
    return {"order_id": order["order_id"], "total": total}


@durable_step
async def reserve_stock(step: StepContext, order_id: str) -> str:
    # The warehouse is flaky: the first attempt fails, the retry succeeds.
    _reservation_attempts[order_id] = _reservation_attempts.get(order_id, 0) + 1
    if step.attempt == 1:
        raise ConnectionError("warehouse unavailable")
    return f"rsv-{order_id}"


@durable_execution
async def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    order = await context.step(validate(event))
    context.logger.info("validated order %s", order["order_id"])

    retry = StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(max_attempts=3, initial_delay=Duration.from_seconds(2))
        )
    )
    reservation = await context.step(reserve_stock(order["order_id"]), config=retry)

    await context.wait(Duration.from_minutes(10), name="fraud-check-window")

    async def charge_and_confirm(child: DurableContext) -> str:
        charge_id = await child.step(lambda _: f"ch-{order['order_id']}", name="charge")
        await child.step(lambda _: None, name="send-confirmation")
        return charge_id

    charge = await context.run_in_child_context(charge_and_confirm, name="payment")
    return {"order": order, "reservation": reservation, "charge": charge}


async def main() -> None:
    from adurable.testing import LocalRunner

    order = {"order_id": "o-42", "items": [{"sku": "tea", "price": 4, "qty": 3}]}
    result = await LocalRunner(handler).run(input=order)
    print(f"status: {result.status}  invocations: {result.invocations}")
    print("result:", json.dumps(result.result, indent=2))
    for op in result.operations:
        print(f"  {op.type.value:<10} {op.status.value:<10} {op.name or ''}")


if __name__ == "__main__":
    anyio.run(main)
