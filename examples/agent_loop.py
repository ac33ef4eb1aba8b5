"""GenAI agent loop: call the model, run the tool it asks for, repeat until it answers.

Every model call and tool run is a step, so a crash or timeout mid-conversation resumes from
the last completed call instead of paying for the whole conversation again.
"""

from __future__ import annotations

from typing import Any

import anyio

from adurable import DurableContext, durable_execution


def invoke_ai_model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A stand-in model: asks for the weather tool once, then answers."""
    if not any(m["role"] == "tool" for m in messages):
        return {"tool": {"name": "weather", "city": "Lisbon"}, "response": None}
    return {"tool": None, "response": f"It is {messages[-1]['content']} in Lisbon."}


def execute_tool(tool: dict[str, Any]) -> str:
    return {"weather": "sunny"}[tool["name"]]


@durable_execution
async def handler(event: dict[str, Any], context: DurableContext) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": event["prompt"]}]
    turn = 0
    while True:
        turn += 1
        snapshot = list(messages)
        result = await context.step(
            lambda _, m=snapshot: invoke_ai_model(m), name=f"invoke-model-{turn}"
        )
        if result.get("tool") is None:
            return str(result["response"])
        tool = result["tool"]
        tool_result = await context.step(
            lambda _, t=tool: execute_tool(t), name=f"tool-{tool['name']}-{turn}"
        )
        messages.append({"role": "tool", "content": tool_result})


async def main() -> None:
    from adurable.testing import LocalRunner

    result = await LocalRunner(handler).run(input={"prompt": "What's the weather?"})
    print(result.status, result.result)


if __name__ == "__main__":
    anyio.run(main)
