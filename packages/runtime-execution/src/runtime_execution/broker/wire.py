"""The wire format of a broker message body (no I/O)."""

from __future__ import annotations

import json
from typing import Any

from runtime_core import ValidationError, new_id

__all__ = ["message_body"]


def message_body(
    sender: str,
    seq: int,
    text: str | None = None,
    *,
    conversation: str | None = None,
    role: str | None = None,
    message_id: str | None = None,
    **fields: Any,
) -> bytes:
    """The UTF-8 JSON body of one message: ``id`` (a new UUIDv7 unless given), ``sender``,
    ``seq``, and ``conversation``, ``role``, ``text`` and any other JSON ``fields`` when given.
    ValidationError for a field that is not JSON."""
    body: dict[str, Any] = {"id": message_id or new_id(), "sender": sender, "seq": seq}
    for name, value in (("conversation", conversation), ("role", role), ("text", text)):
        if value is not None:
            body[name] = value
    for name, value in fields.items():
        if name in body:
            raise ValidationError(f"field {name!r} is set twice")
        body[name] = value
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"a message body is JSON: {exc}") from None
