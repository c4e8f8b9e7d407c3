"""The browser's modal dialogs: a confirmation before restore and fork, and a notice that says
plainly what happened (or why something was refused)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

__all__ = ["ConfirmScreen", "Confirmation", "NoticeScreen"]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A "yes": the option's state (when the dialog had a checkbox) and the text typed (when it
    had an input)."""

    option: bool = False
    text: str = ""


class ConfirmScreen(ModalScreen[Confirmation | None]):
    """Ask before a write. ``y`` or the Yes button confirms; ``n``, Escape or No declines (the
    result is None and nothing is written). ``option`` adds a checkbox, ``text`` a text box with
    that default value, focused (typing replaces it, Enter confirms, Escape declines)."""

    BINDINGS = [
        Binding("y", "yes", "yes"),
        Binding("n,escape", "no", "no"),
    ]

    def __init__(
        self, title: str, question: str, *, option: str | None = None, text: str | None = None
    ) -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._option = option
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, id="dialog-title", markup=False)
            yield Static(self._question, id="question", markup=False)
            if self._option is not None:
                yield Checkbox(self._option, id="option")
            if self._text is not None:
                yield Input(self._text, id="text")
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="warning", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        # with a text box, typing replaces its default and Enter confirms; otherwise the safe
        # answer has the focus, so a stray Enter declines
        if self._text is not None:
            self.query_one("#text", Input).focus()
        else:
            self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            self.action_yes()
        else:
            self.action_no()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_yes()

    def action_yes(self) -> None:
        option = self.query_one("#option", Checkbox).value if self._option is not None else False
        text = self.query_one("#text", Input).value if self._text is not None else ""
        self.dismiss(Confirmation(option, text))

    def action_no(self) -> None:
        self.dismiss(None)


class NoticeScreen(ModalScreen[None]):
    """A message to read, closed with Enter or Escape. ``error`` shows it as a refusal."""

    BINDINGS = [Binding("escape,enter,q", "close", "close")]

    def __init__(self, title: str, message: str, *, error: bool = False) -> None:
        super().__init__(classes="error" if error else "")
        self._title = title
        self._message = message

    @property
    def message(self) -> str:
        return self._message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, id="dialog-title", markup=False)
            yield Static(self._message, id="notice", markup=False)
            with Horizontal(id="buttons"):
                yield Button("OK", variant="primary", id="ok")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
