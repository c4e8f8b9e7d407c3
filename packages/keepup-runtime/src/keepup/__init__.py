"""Keepup facade."""

__all__: list[str] = []
