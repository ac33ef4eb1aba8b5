"""``invoke``: chained invoke of another Lambda function (PROTOCOL §7.4).

id → lookup → SUCCEEDED: decode the target's result; FAILED / TIMED_OUT / STOPPED: raise
InvokeError; missing: START (sync, carrying the payload) and re-read — a target the service
cannot resolve comes back FAILED in the same response; otherwise suspend until the target is
done. Payload and result are plain JSON by default (``{"x": 1}``), not the extended serdes.
"""

from __future__ import annotations

import re
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from adurable._config import InvokeConfig
from adurable._enums import OperationAction, OperationStatus, OperationSubType, OperationType
from adurable._errors import InvokeError, ValidationError
from adurable._failures import rebuild_error
from adurable._journal import Identity
from adurable._plugins import PropagationInput
from adurable._scope import Scope
from adurable._serde import DEFAULT_JSON_SERDES, deserialize, serialize

if TYPE_CHECKING:
    from adurable._wire import Operation

_FAILED = (OperationStatus.FAILED, OperationStatus.TIMED_OUT, OperationStatus.STOPPED)

_ARN_PREFIX = r"(?:arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(?:-gov)?-[a-z]+-\d:)?\d{12}:function:"
_NAME = r"[a-zA-Z0-9_-]{1,64}"
#: ``$LATEST``, ``$LATEST.PUBLISHED``, a version number or an alias.
_QUALIFIER = r"\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]{1,128}"
_QUALIFIED = re.compile(rf"(?:{_ARN_PREFIX})?{_NAME}:(?:{_QUALIFIER})")
_UNQUALIFIED = re.compile(rf"(?:{_ARN_PREFIX})?{_NAME}")


def check_function_name(function_name: object) -> str:
    """``function_name`` if it is a qualified function name or ARN; ValidationError otherwise.

    Accepted: ``name:qualifier``, ``123456789012:function:name:qualifier`` and
    ``arn:aws:lambda:<region>:123456789012:function:name:qualifier``, where the qualifier is a
    version, an alias or ``$LATEST``. Durable functions can only be invoked qualified.
    """
    if not isinstance(function_name, str):
        raise ValidationError(f"invoke expects the function name as a str, got {function_name!r}")
    if _QUALIFIED.fullmatch(function_name):
        return function_name
    if _UNQUALIFIED.fullmatch(function_name):
        raise ValidationError(
            f"invoke needs a qualified function name or ARN, got {function_name!r}: add a "
            f"version, an alias or $LATEST, e.g. {function_name + ':$LATEST'!r}"
        )
    raise ValidationError(
        f"invoke expects a function name or ARN with a qualifier (e.g. 'my-function:prod' or "
        f"'arn:aws:lambda:<region>:<account>:function:my-function:1'), got {function_name!r}"
    )


def invoke_operation(
    scope: Scope, function_name: str, payload: Any, name: str | None, config: InvokeConfig | None
) -> Coroutine[Any, Any, Any]:
    """Validate the target (ValidationError before any id is allocated), allocate the position
    now and return the coroutine that invokes it."""
    check_function_name(function_name)
    if config is not None and not isinstance(config, InvokeConfig):
        raise ValidationError(f"invoke expects an InvokeConfig, got {config!r}")
    return _invoke(scope, scope.next_id(), function_name, payload, name, config or InvokeConfig())


async def _invoke(
    scope: Scope,
    op_id: str,
    function_name: str,
    payload: Any,
    name: str | None,
    config: InvokeConfig,
) -> Any:
    wanted = scope.identity(OperationType.CHAINED_INVOKE, OperationSubType.CHAINED_INVOKE, name)
    stored = scope.lookup(op_id, wanted)
    flip = scope.before_operation(stored)
    try:
        if stored is None:
            await _start(scope, op_id, wanted, function_name, payload, config)
            stored = scope.journal.get(op_id)
        if stored is None or stored.status not in (OperationStatus.SUCCEEDED, *_FAILED):
            await scope.suspend(f"invoke {name or op_id!r} waits for {function_name}")
        return _outcome(scope, op_id, stored, config)
    finally:
        scope.after_operation(flip)


async def _start(
    scope: Scope,
    op_id: str,
    wanted: Identity,
    function_name: str,
    payload: Any,
    config: InvokeConfig,
) -> None:
    serdes = config.serdes_payload or DEFAULT_JSON_SERDES
    body = serialize(serdes, payload, operation_id=op_id, execution_arn=scope.execution_arn)
    options: dict[str, Any] = {"FunctionName": function_name}
    if config.tenant_id is not None:
        options["TenantId"] = config.tenant_id
    trace_id = _trace_id(scope, op_id, function_name)
    if trace_id is not None:
        options["XAmznTraceId"] = trace_id
    start = scope.update(
        op_id, wanted, action=OperationAction.START, payload=body, chained_invoke_options=options
    )
    await scope.checkpoint(start, sync=True)


def _outcome(scope: Scope, op_id: str, stored: Operation, config: InvokeConfig) -> Any:
    details = stored.chained_invoke_details
    if stored.status in _FAILED:
        raise rebuild_error(InvokeError, details.error if details else None)
    if details is None or details.result is None:
        return None
    serdes = config.serdes_result or DEFAULT_JSON_SERDES
    return deserialize(
        serdes, details.result, operation_id=op_id, execution_arn=scope.execution_arn
    )


def _trace_id(scope: Scope, op_id: str, function_name: str) -> str | None:
    """Ask the plugins for the trace header to propagate to the target (new starts only)."""
    plugins = scope.invocation.plugins
    if not plugins:
        return None
    info = PropagationInput(scope.execution_arn, op_id, function_name, scope.parent_id)
    return plugins.propagation(info)
