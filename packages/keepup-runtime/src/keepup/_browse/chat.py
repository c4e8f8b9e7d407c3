"""A checkpoint's conversation as a chat: the ``messages`` channel of its state, one block per
message, coloured by role. Pure rendering (Rich text), no Textual, so it is tested alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.text import Text

__all__ = ["ChatMessage", "chat_of", "preview"]

ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message to show: ``role`` (one of :data:`ROLES`, or ``other``), a title (the role,
    and the tool or sender name), and its body."""

    role: str
    title: str
    body: Text


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                parts.append(json.dumps(part, ensure_ascii=False, default=str))
        return "\n".join(parts)
    return json.dumps(content, ensure_ascii=False, indent=2, default=str)


def _calls_text(calls: Any) -> Text:
    out = Text()
    if not isinstance(calls, list):
        return out
    for call in calls:
        if not isinstance(call, dict):
            continue
        inner = call.get("function")
        fn: dict[str, Any] = inner if isinstance(inner, dict) else call
        name = str(fn.get("name", "?"))
        args = fn.get("arguments", {})
        shown = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False, default=str)
        out.append("\n→ ", style="bold")
        out.append(name, style="bold magenta")
        out.append(f"({preview(shown, 200)})", style="dim")
    return out


def chat_of(messages: Any) -> list[ChatMessage]:
    """The chat blocks of a ``messages`` channel: a list of dicts with ``role`` and ``content``
    (and optionally ``name``, ``tool_calls``, ``tool_call_id``), as agent runtimes store them.
    Anything else in the list is shown as JSON, never dropped."""
    if not isinstance(messages, list):
        return []
    out: list[ChatMessage] = []
    for m in messages:
        if not isinstance(m, dict):
            out.append(ChatMessage("other", "?", Text(json.dumps(m, ensure_ascii=False, default=str))))
            continue
        role = str(m.get("role", "?"))
        name = m.get("name")
        title = role if not name else f"{role} · {name}"
        body = Text(_content_text(m.get("content")))
        body.append_text(_calls_text(m.get("tool_calls")))
        metadata = m.get("metadata")
        if isinstance(metadata, dict) and metadata.get("success") is False:
            title += " · failed"
        out.append(ChatMessage(role if role in ROLES else "other", title, body))
    return out


def preview(text: str, width: int = 80) -> str:
    """``text`` on one line, clipped to ``width`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
