"""The journal: every operation the service has recorded for this execution, by id.

Filled from the invocation event (and its pages), then merged with every checkpoint response
(full replacement by id, PROTOCOL §3.3 rule 5). ``check`` is the replay lookup: it returns the
stored operation after verifying that it is the same operation the code asks for now (§6.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adurable._errors import NonDeterministicExecutionError
from adurable._wire import Operation, OperationType


@dataclass(frozen=True, slots=True)
class Identity:
    """What the code asks for at an id: compared with the recorded operation on replay."""

    type: OperationType
    sub_type: str | None
    name: str | None
    parent_id: str | None

    def describe(self) -> str:
        label = f"{self.type.value} ({self.sub_type})" if self.sub_type else self.type.value
        return f"{label} {self.name!r}" if self.name else f"unnamed {label}"


def _identity_of(op: Operation) -> Identity:
    return Identity(op.type, op.sub_type or None, op.name or None, op.parent_id or None)


class Journal:
    """Operations by id; the single source of replay truth for one invocation."""

    __slots__ = ("_ops",)

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self._ops: dict[str, Operation] = {}
        self.apply(operations)

    def apply(self, operations: Iterable[Operation]) -> None:
        for op in operations:
            self._ops[op.id] = op

    def get(self, op_id: str) -> Operation | None:
        return self._ops.get(op_id)

    def __contains__(self, op_id: object) -> bool:
        return op_id in self._ops

    def __len__(self) -> int:
        return len(self._ops)

    def values(self) -> list[Operation]:
        return list(self._ops.values())

    def check(self, op_id: str, wanted: Identity) -> Operation | None:
        """The stored operation at ``op_id`` (None if new work), verified against ``wanted``.

        Raises NonDeterministicExecutionError when the recorded type, subtype, name or parent
        differ from what this run asks for.
        """
        op = self._ops.get(op_id)
        if op is None:
            return None
        recorded = _identity_of(op)
        wanted = Identity(
            wanted.type, wanted.sub_type or None, wanted.name or None, wanted.parent_id or None
        )
        if recorded != wanted:
            raise NonDeterministicExecutionError(_mismatch_message(op_id, recorded, wanted), op_id)
        return op


def _mismatch_message(op_id: str, recorded: Identity, wanted: Identity) -> str:
    fields = [
        ("type", recorded.type.value, wanted.type.value),
        ("subtype", recorded.sub_type, wanted.sub_type),
        ("name", recorded.name, wanted.name),
        ("parent_id", recorded.parent_id, wanted.parent_id),
    ]
    diffs = ", ".join(f"{f} checkpoint={a!r} current={b!r}" for f, a, b in fields if a != b)
    return (
        f"Non-deterministic operation identity at id={op_id!r}: {diffs}. "
        f"The execution recorded {recorded.describe()} here, but this run asked for "
        f"{wanted.describe()}; did the code change between invocations, or does it branch on "
        "something that is not recorded in a step?"
    )
