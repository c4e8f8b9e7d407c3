"""Keepup as a LangGraph checkpointer: :class:`KeepupSaver` and :class:`AsyncKeepupSaver`, on
any Keepup store. Depends on runtime-persistence, never on the ``keepup`` facade."""

from keepup_langgraph.savers import AsyncKeepupSaver, KeepupSaver

__all__ = ["AsyncKeepupSaver", "KeepupSaver"]
