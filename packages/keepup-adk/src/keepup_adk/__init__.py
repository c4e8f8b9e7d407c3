"""keepup-adk: Google ADK's artifact and session services over a Keepup store.

:class:`KeepupArtifactService` is a ``BaseArtifactService`` (versioned, content-addressed
artifacts) and :class:`KeepupSessionService` a ``BaseSessionService`` (sessions with ``app:``,
``user:`` and session state, state deltas and events). Both run on any Keepup store URL:
SQLite, PostgreSQL, MySQL, Redis, plain files or memory, shared by any number of processes."""

from keepup_adk.artifacts import KeepupArtifactService
from keepup_adk.sessions import KeepupSessionService

__all__ = ["KeepupArtifactService", "KeepupSessionService"]
__version__ = "0.1.0"
