"""The ``keepup browse`` application: a Textual app over one :class:`StoreSource`."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from keepup._browse.screens import ThreadsScreen
from keepup._browse.source import StoreSource

__all__ = ["BrowseApp"]

CSS = """
#context { height: auto; max-height: 4; padding: 0 1; background: $boost; }
DataTable { height: 1fr; }
#chat, #diff, #event { height: 1fr; padding: 0 1; }
.message { border: round $secondary; padding: 0 1; margin: 0 0 0 0; height: auto; }
.message.user { border: round $success; margin-right: 6; }
.message.assistant { border: round $accent; margin-left: 6; }
.message.tool { border: round $warning; margin-left: 6; color: $text-muted; }
.message.system { border: round $error; }
.message.channels { border: dashed $secondary; color: $text-muted; }
.note { color: $text-muted; padding: 1; }
.patch { margin: 1 0 0 0; }
ConfirmScreen, NoticeScreen { align: center middle; }
#dialog { width: 72; max-width: 100%; height: auto; border: thick $warning; background: $surface; padding: 0 1; }
NoticeScreen #dialog { border: thick $primary; }
NoticeScreen.error #dialog { border: thick $error; }
#dialog-title { text-style: bold; width: 100%; }
#question, #notice { margin: 1 0; }
#buttons { height: auto; align: right middle; }
#buttons Button { margin-left: 1; }
"""


class BrowseApp(App[None]):
    """Browse one store: threads and their forks, checkpoints, conversations, diffs, recorded
    events and search. The store stays the caller's: close the source after the app ends.
    ``describe`` words the message of a refused or failed restore or fork.

    Keys are listed in the footer of each screen; Escape goes back, q quits."""

    TITLE = "keepup browse"
    CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+c,q", "quit", "quit", show=False, priority=False)]

    def __init__(
        self, source: StoreSource, *, describe: Callable[[BaseException], str] | None = None
    ) -> None:
        super().__init__()
        self.source = source
        self.marked: str | None = None
        """The checkpoint marked (``m``) as the older side of the next diff."""
        self._describe = describe

    def describe(self, error: BaseException) -> str:
        """The message shown for a refused or failed operation: ``describe(error)`` as given
        (the ``keepup`` command passes the one line it prints for that error), else the
        error's own message."""
        if self._describe is not None:
            return self._describe(error)
        return " ".join(str(error).split()) or type(error).__name__

    def on_mount(self) -> None:
        self.sub_title = self.source.url
        self.push_screen(ThreadsScreen())
