"""keepup-openai-agents: conversation history of the OpenAI Agents SDK kept in a Keepup store.

:class:`KeepupSession` implements the SDK's ``Session`` protocol (``get_items``, ``add_items``,
``pop_item``, ``clear_session``) over any Keepup store URL: SQLite, PostgreSQL, MySQL, Redis,
plain files or memory."""

from keepup_openai_agents.session import KeepupSession

__all__ = ["KeepupSession"]
__version__ = "0.1.0"
