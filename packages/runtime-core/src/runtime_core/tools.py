"""How execution reaches tools without importing them: the invoker interface, and the sink where
large tool outputs go (the artifact store, wired by the facade)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from runtime_core.artifacts import ArtifactRef
from runtime_core.runs import ToolCall, ToolCallResult

__all__ = ["OutputSink", "ToolDescription", "ToolInvoker"]


@dataclass(frozen=True, slots=True)
class ToolDescription:
    """What an agent is told about a tool: name, description and a JSON Schema of its parameters."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ToolInvoker(Protocol):
    """Runs tool calls. Never raises for a tool's own failure: the result says success or error."""

    def describe(self) -> list[ToolDescription]: ...

    def invoke(self, call: ToolCall, *, timeout: float | None = None) -> ToolCallResult: ...


@runtime_checkable
class OutputSink(Protocol):
    """Where a tool puts an output too large to keep inline."""

    def store_output(self, call_id: str, data: bytes, media_type: str) -> ArtifactRef: ...
