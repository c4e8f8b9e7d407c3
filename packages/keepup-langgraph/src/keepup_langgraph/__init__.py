"""Keepup as a LangGraph checkpointer."""
