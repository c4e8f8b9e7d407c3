"""The tool registry: register tools, describe them to an agent, and invoke them safely."""

from __future__ import annotations

import builtins
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from runtime_core import (
    ConflictError,
    NotFoundError,
    NullTelemetry,
    OutputSink,
    Telemetry,
    ToolCall,
    ToolCallResult,
    ToolDescription,
    ValidationError,
)

from runtime_tools.specs import ToolContext, ToolError, ToolSpec

__all__ = ["DEFAULT_INLINE_LIMIT", "ToolRegistry"]

DEFAULT_INLINE_LIMIT = 64 * 1024  # characters of output kept inline in a result before spilling
_PREVIEW_CHARS = 2048
_F = TypeVar("_F", bound=Callable[..., Any])


class ToolRegistry:
    """A set of tools by name; implements core's ToolInvoker.

    ``invoke`` validates the arguments against the tool's JSON Schema, runs the tool within a time
    budget, and always returns a ToolCallResult: a tool's own failure (an exception, invalid
    arguments, an unknown tool, a timeout) is reported in the result, never raised. Outputs larger
    than ``inline_limit`` characters go to ``output_sink`` when one is given and are replaced by a
    truncated preview that names the stored artifact; without a sink only the preview is kept.

    A timed-out tool cannot be stopped from the outside (Python threads cannot be killed): its
    result is reported as a timeout and the thread is left to finish in the background. Tools that
    start processes (run_command) honour the deadline themselves and kill what they started."""

    def __init__(
        self,
        *,
        default_timeout: float | None = None,
        output_sink: OutputSink | None = None,
        inline_limit: int | None = DEFAULT_INLINE_LIMIT,
        telemetry: Telemetry | None = None,
    ) -> None:
        if default_timeout is not None and not default_timeout > 0:
            raise ValidationError(f"default_timeout must be positive, got {default_timeout!r}")
        if inline_limit is not None and inline_limit < 16:
            raise ValidationError(f"inline_limit must be at least 16 characters, got {inline_limit!r}")
        self._tools: dict[str, ToolSpec] = {}
        self._lock = threading.Lock()
        self.default_timeout = default_timeout
        self.output_sink = output_sink
        self.inline_limit = inline_limit
        self.telemetry: Telemetry = telemetry or NullTelemetry()

    # registration

    @overload
    def register(self, tool: ToolSpec, /) -> ToolSpec: ...

    @overload
    def register(
        self,
        tool: _F,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        changes_workspace: bool = False,
    ) -> _F: ...

    @overload
    def register(
        self,
        tool: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        changes_workspace: bool = False,
    ) -> Callable[[_F], _F]: ...

    def register(
        self,
        tool: ToolSpec | Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        changes_workspace: bool = False,
    ) -> ToolSpec | Callable[..., Any]:
        """Add a tool: a ToolSpec, or a function (its spec derived from its type hints).

        Returns what it was given (the spec, or the function unchanged), so it works as a bare
        decorator (``@registry.register``) and with options (``@registry.register(name=...)``). Raises ConflictError if the name is taken and
        ValidationError if no schema can be derived."""
        if tool is None:

            def decorator(function: _F) -> _F:
                self.register(
                    function,
                    name=name,
                    description=description,
                    parameters=parameters,
                    timeout=timeout,
                    changes_workspace=changes_workspace,
                )
                return function

            return decorator
        spec = (
            tool
            if isinstance(tool, ToolSpec)
            else ToolSpec.from_function(
                tool,
                name=name,
                description=description,
                parameters=parameters,
                timeout=timeout,
                changes_workspace=changes_workspace,
            )
        )
        with self._lock:
            if spec.name in self._tools:
                raise ConflictError(f"a tool named {spec.name!r} is already registered")
            self._tools[spec.name] = spec
        return tool

    def unregister(self, name: str) -> None:
        """Remove a tool; raises NotFoundError if there is none by that name."""
        with self._lock:
            if self._tools.pop(name, None) is None:
                raise NotFoundError(f"no tool named {name!r}")

    def get(self, name: str) -> ToolSpec:
        """The tool named ``name``; raises NotFoundError."""
        with self._lock:
            spec = self._tools.get(name)
        if spec is None:
            raise NotFoundError(f"no tool named {name!r}; known tools: {', '.join(self.names()) or 'none'}")
        return spec

    def names(self) -> builtins.list[str]:
        with self._lock:
            return sorted(self._tools)

    def list(self) -> builtins.list[ToolSpec]:
        """Every tool, sorted by name."""
        with self._lock:
            return [self._tools[n] for n in sorted(self._tools)]

    def describe(self) -> builtins.list[ToolDescription]:
        """What an agent is told about the tools, sorted by name."""
        return [spec.describe() for spec in self.list()]

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._tools

    def __len__(self) -> int:
        with self._lock:
            return len(self._tools)

    # invocation

    def invoke(self, call: ToolCall, *, timeout: float | None = None) -> ToolCallResult:
        """Run ``call`` and return its result; never raises for the tool's own failure.

        ``timeout`` (seconds) overrides the tool's and the registry's default budget."""
        started = time.monotonic()
        with self.telemetry.span("tool.invoke", tool=call.name, call_id=call.id) as fields:
            result = self._invoke(call, timeout, started)
            fields["success"] = result.success
        self.telemetry.count("tool.calls", tool=call.name, success=str(result.success).lower())
        return result

    def _invoke(self, call: ToolCall, timeout: float | None, started: float) -> ToolCallResult:
        def failed(message: str, output: Any = None) -> ToolCallResult:
            return ToolCallResult(
                call_id=call.id,
                name=call.name,
                arguments=call.arguments,
                success=False,
                output=output,
                error=message,
                duration_ms=(time.monotonic() - started) * 1000,
            )

        with self._lock:
            spec = self._tools.get(call.name)
        if spec is None:
            return failed(f"unknown tool {call.name!r}; known tools: {', '.join(self.names()) or 'none'}")
        problems = spec.validation_errors(call.arguments)
        if problems:
            return failed("invalid arguments: " + "; ".join(problems[:10]))
        budget = timeout if timeout is not None else spec.timeout or self.default_timeout
        deadline = None if budget is None else started + budget
        kwargs = dict(call.arguments)
        if spec.context_param is not None:
            kwargs[spec.context_param] = ToolContext(call_id=call.id, tool=call.name, deadline=deadline)

        outcome = _run(spec.function, kwargs, budget)
        if outcome.timed_out:
            return failed(f"tool {call.name!r} timed out after {budget:g}s")
        if outcome.error is not None:
            exc = outcome.error
            output = self._spill(call.id, exc.output) if isinstance(exc, ToolError) else None
            message = str(exc) if isinstance(exc, ToolError) else f"{type(exc).__name__}: {exc}"
            return failed(message or type(exc).__name__, _plain_or_none(output))
        try:
            output = self._spill(call.id, outcome.value)
            return ToolCallResult(
                call_id=call.id,
                name=call.name,
                arguments=call.arguments,
                success=True,
                output=output,
                duration_ms=(time.monotonic() - started) * 1000,
            )
        except ValidationError as exc:
            return failed(f"tool {call.name!r} returned an output that is not plain data: {exc}")

    def _spill(self, call_id: str, output: Any) -> Any:
        """Keep ``output`` inline if small; else store it in the sink and keep a preview."""
        limit = self.inline_limit
        if limit is None:
            return output
        if isinstance(output, str):
            return (
                self._spill_text(call_id, output, "text/plain; charset=utf-8", limit)
                if len(output) > limit
                else output
            )
        rest = output
        if isinstance(output, dict):
            big = {k for k, v in output.items() if isinstance(v, str) and len(v) > limit}
            if big:
                output = {
                    k: self._spill_text(f"{call_id}.{k}", v, "text/plain; charset=utf-8", limit)
                    if k in big
                    else v
                    for k, v in output.items()
                }
                rest = {k: v for k, v in output.items() if k not in big}
        try:
            text = json.dumps(rest, ensure_ascii=False)
        except (TypeError, ValueError):
            return output  # not JSON: the result's own validation reports it
        if len(text) > limit:
            return self._spill_text(
                call_id, json.dumps(output, ensure_ascii=False), "application/json", limit
            )
        return output

    def _spill_text(self, key: str, text: str, media_type: str, limit: int) -> dict[str, Any]:
        preview = text[: min(limit, _PREVIEW_CHARS)]
        out: dict[str, Any] = {"truncated": True, "size": len(text), "preview": preview}
        if self.output_sink is not None:
            try:
                ref = self.output_sink.store_output(key, text.encode("utf-8", "surrogatepass"), media_type)
                out["artifact"] = {"scope": ref.scope, "key": ref.key, "version": ref.version}
            except Exception as exc:  # the tool's effect happened; do not turn it into a failure
                out["artifact_error"] = f"{type(exc).__name__}: {exc}"
        return out


class _Outcome:
    __slots__ = ("error", "timed_out", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.error: Exception | None = None
        self.timed_out = False


def _run(function: Callable[..., Any], kwargs: dict[str, Any], budget: float | None) -> _Outcome:
    outcome = _Outcome()

    def target() -> None:
        try:
            outcome.value = function(**kwargs)
        except Exception as exc:
            outcome.error = exc

    if budget is None:
        target()
        return outcome
    worker = threading.Thread(target=target, name="keepup-tool", daemon=True)
    worker.start()
    worker.join(budget)
    if worker.is_alive():
        outcome.timed_out = True
    return outcome


def _plain_or_none(value: Any) -> Any:
    try:
        ToolCallResult(call_id="x", name="x", arguments={}, success=True, output=value)
    except ValidationError:
        return None
    return value
