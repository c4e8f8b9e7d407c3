"""Keepup tools: a registry of tools described by JSON Schema and invoked safely (core's
ToolInvoker), and built-in workspace tools confined to a workspace root that call a before-change
hook (core's BeforeChangeHook) before every change."""

from runtime_tools.commands import MINIMAL_ENV_NAMES, CommandOutcome, minimal_environment, run_process
from runtime_tools.confinement import WorkspaceRoot
from runtime_tools.registry import DEFAULT_INLINE_LIMIT, ToolRegistry
from runtime_tools.specs import ToolContext, ToolError, ToolSpec, schema_from_function
from runtime_tools.workspace_tools import WORKSPACE_TOOL_NAMES, WorkspaceTools

__all__ = [
    "DEFAULT_INLINE_LIMIT",
    "MINIMAL_ENV_NAMES",
    "WORKSPACE_TOOL_NAMES",
    "CommandOutcome",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolSpec",
    "WorkspaceRoot",
    "WorkspaceTools",
    "minimal_environment",
    "run_process",
    "schema_from_function",
]
