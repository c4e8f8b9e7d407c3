"""Keepup execution: the durable step runner (checkpoint after every step, tool results recorded
as pending writes as soon as they return, a heartbeat-renewed lease on the thread, resume after a
crash, cancel, replay onto a fork) and a scripted deterministic agent for tests and demos.

Tools are reached only through core's ToolInvoker; this package never imports runtime_tools."""

from runtime_execution.agents import Agent, Step, StepContext
from runtime_execution.heartbeats import LeaseKeeper
from runtime_execution.runner import RESULT_CHANNEL, STARTED_CHANNEL, LeaseLostError, Runner, run_id_of_holder
from runtime_execution.scripted import ScriptedAgent, ScriptedFailure, ScriptItem

__all__ = [
    "RESULT_CHANNEL",
    "STARTED_CHANNEL",
    "Agent",
    "LeaseKeeper",
    "LeaseLostError",
    "Runner",
    "ScriptItem",
    "ScriptedAgent",
    "ScriptedFailure",
    "Step",
    "StepContext",
    "run_id_of_holder",
]
