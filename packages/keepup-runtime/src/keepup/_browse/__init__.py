"""``keepup browse``: a terminal browser (Textual) over one store.

The data side (:mod:`keepup._browse.source`, :mod:`keepup._browse.search`) uses only the async
repositories and imports no Textual, so it can be tested and reused alone; the screens live in
:mod:`keepup._browse.app` and friends, which import Textual, an optional extra
(``keepup-runtime[tui]``). Nothing here is imported by ``import keepup`` or by other commands."""

from __future__ import annotations

__all__: list[str] = []
