"""Pluggable metadata enrichment. An :class:`Enricher` looks at a recorded message and returns
plain data; the recorder stores it under ``message.enrichment[enricher.name]``, beside the
message, never changing its body or fields. The seed's chain type, tier and tags are one
example of what an enricher computes; :class:`KeywordTagger` is a small built-in one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from runtime_core import ValidationError

from runtime_persistence.session.recorder._model import RecordedMessage, query_terms

__all__ = ["Enricher", "KeywordTagger", "combine_enrichers"]


@runtime_checkable
class Enricher(Protocol):
    """Computes metadata for one message: plain data (JSON types), or None for nothing."""

    @property
    def name(self) -> str: ...

    def __call__(self, message: RecordedMessage) -> Any: ...


class KeywordTagger:
    """Tags a message with every tag whose keywords occur (as words, case-insensitive) in its
    text: ``KeywordTagger({"error": ["error", "failed"], "plan": ["plan", "todo"]})``."""

    name = "tags"

    def __init__(self, rules: Mapping[str, Sequence[str]]) -> None:
        self._rules = {tag: {w.lower() for w in words} for tag, words in rules.items()}

    def __call__(self, message: RecordedMessage) -> list[str]:
        words = set(query_terms(message.text or ""))
        return sorted(tag for tag, keys in self._rules.items() if words & keys)


def combine_enrichers(enrichers: Sequence[Enricher]) -> Any:
    """One function running every enricher, for :meth:`MessageStore.append` (None when there
    are none). Names must be unique; an enricher that raises is recorded as its error, and the
    message is recorded all the same."""
    names = [e.name for e in enrichers]
    if len(set(names)) != len(names):
        raise ValidationError(f"enricher names must be unique, got {names}")
    if not enrichers:
        return None

    def enrich(message: RecordedMessage) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for enricher in enrichers:
            try:
                value = enricher(message)
            except Exception as exc:  # one bad enricher must not lose a message
                out[enricher.name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
                continue
            if value is not None:
                out[enricher.name] = value
        return out

    return enrich
