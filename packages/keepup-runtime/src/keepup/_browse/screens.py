"""The browser's screens: threads (forks under the thread they came from), a thread's
checkpoints (with the forks started from each), a checkpoint's conversation, the diff between two
checkpoints, recorded events, and search results.

Every screen reads through :class:`keepup._browse.source.StoreSource`; writes (restore, fork) go
through a :class:`~keepup._browse.dialogs.ConfirmScreen` first, and a refusal or failure is shown
in a :class:`~keepup._browse.dialogs.NoticeScreen` with the message the command line prints."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

from rich import box
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from runtime_core import Checkpoint, Event, KeepupError, Thread
from runtime_execution import run_id_of_holder
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from keepup._browse.chat import chat_of, preview
from keepup._browse.dialogs import Confirmation, ConfirmScreen, NoticeScreen
from keepup._browse.search import SearchHit, text_of
from keepup._browse.source import Comparison, StoreSource, unique_prefixes

__all__ = [
    "MAX_MESSAGES",
    "CheckpointsScreen",
    "ConversationScreen",
    "DiffScreen",
    "EventScreen",
    "EventsScreen",
    "SearchScreen",
    "ThreadsScreen",
]


MAX_MESSAGES = 200
"""A conversation shows its newest this many messages (and says how many it leaves out)."""

MAX_CHANNELS_TEXT = 4000
"""The other channels of a state are shown as JSON, clipped to this many characters."""


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%m-%d %H:%M:%S")


class Host(Protocol):
    """What the screens need of the app that shows them (:class:`keepup._browse.app.BrowseApp`)."""

    source: StoreSource
    marked: str | None
    """The checkpoint marked (``m``) as the older side of the next diff."""

    def describe(self, error: BaseException) -> str:
        """The message to show for a failed or refused operation."""
        ...


_S = TypeVar("_S", bound="_Base")
_P = ParamSpec("_P")


def guarded(
    title: str,
) -> Callable[
    [Callable[Concatenate[_S, _P], Coroutine[Any, Any, None]]],
    Callable[Concatenate[_S, _P], Coroutine[Any, Any, None]],
]:
    """Show a Keepup error raised by the handler in a notice titled ``title`` (the message
    ``keepup`` would print), instead of ending the app: the store may change under the browser
    (another process deletes a thread, a server goes away)."""

    def wrap(
        fn: Callable[Concatenate[_S, _P], Coroutine[Any, Any, None]],
    ) -> Callable[Concatenate[_S, _P], Coroutine[Any, Any, None]]:
        @functools.wraps(fn)
        async def run(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
            try:
                await fn(self, *args, **kwargs)
            except KeepupError as exc:
                self.show_failure(title, exc)

        return run

    return wrap


class _Base(Screen[None]):
    """What every screen shares: the header, the footer, a line of context, and the source."""

    BINDINGS = [Binding("escape", "back", "back")]

    @property
    def host(self) -> Host:
        return cast(Host, self.app)

    @property
    def source(self) -> StoreSource:
        return self.host.source

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def show_failure(self, title: str, exc: BaseException) -> None:
        self.app.push_screen(NoticeScreen(title, self.host.describe(exc), error=True))

    def selected_key(self, table: DataTable[Any]) -> str | None:
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return None if key is None else str(key)


class ThreadsScreen(_Base):
    """Every thread, newest first, each fork listed under the thread it was forked from."""

    BINDINGS = [
        Binding("escape", "back", "back", show=False),  # the first screen: nothing to go back to
        Binding("enter", "open", "checkpoints", show=False),
        Binding("slash", "search", "search"),
        Binding("e", "events", "events"),
        Binding("g", "refresh", "refresh"),
        Binding("q", "app.quit", "quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="context")
        yield DataTable(id="threads", cursor_type="row", zebra_stripes=True)
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#threads", DataTable)
        table.add_column("thread", key="thread")
        table.add_column("name", key="name")
        table.add_column("head checkpoint", key="head")
        table.add_column("updated", key="updated")

    async def on_screen_resume(self) -> None:
        """Read the threads whenever this screen shows again: a fork made meanwhile appears."""
        await self.action_refresh()

    @guarded("Could not list the threads")
    async def action_refresh(self) -> None:
        threads = await self.source.threads()
        self.query_one("#context", Static).update(
            Text.assemble(f"{len(threads)} threads", ("  ·  store ", "dim"), self.source.url)
        )
        table = self.query_one("#threads", DataTable)
        table.clear()
        ids = unique_prefixes([t.id for t in threads])
        heads = unique_prefixes([t.head for t in threads if t.head is not None])
        for thread, depth in _forest(threads):
            name = thread.name or "(unnamed)"
            if depth:
                name = "  " * (depth - 1) + "└ ⑂ " + name
            table.add_row(
                ids[thread.id],
                name,
                "-" if thread.head is None else heads[thread.head],
                _when(thread.updated_at),
                key=thread.id,
            )

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            await self.app.push_screen(CheckpointsScreen(str(event.row_key.value)))

    async def action_open(self) -> None:
        key = self.selected_key(self.query_one("#threads", DataTable))
        if key is not None:
            await self.app.push_screen(CheckpointsScreen(key))

    async def action_search(self) -> None:
        await self.app.push_screen(SearchScreen())

    async def action_events(self) -> None:
        await self.app.push_screen(EventsScreen())


def _forest(threads: list[Thread]) -> list[tuple[Thread, int]]:
    """Threads in display order: roots newest first, each followed by its forks (oldest first),
    depth-first; a fork whose parent is not listed is a root."""
    listed = {t.id for t in threads}
    children: dict[str, list[Thread]] = {}
    roots: list[Thread] = []
    for t in threads:
        if t.parent_thread_id is not None and t.parent_thread_id in listed and t.parent_thread_id != t.id:
            children.setdefault(t.parent_thread_id, []).append(t)
        else:
            roots.append(t)
    out: list[tuple[Thread, int]] = []
    seen: set[str] = set()

    def walk(t: Thread, depth: int) -> None:
        if t.id in seen:
            return
        seen.add(t.id)
        out.append((t, depth))
        for child in reversed(children.get(t.id, [])):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return out


class _CheckpointActions(_Base):
    """Restore, fork and diff of one checkpoint, shared by the checkpoints and conversation
    screens (``current`` says which checkpoint)."""

    async def current(self) -> Checkpoint | None:
        raise NotImplementedError

    async def reload(self) -> None:
        """Show the store as it is after a write."""

    @guarded("Restore failed")
    async def action_restore(self) -> None:
        cp = await self.current()
        if cp is None:
            return
        try:
            await self.source.leases.check_free(cp.thread_id, "restore")
        except KeepupError as exc:  # a run holds the thread: refused, as `keepup checkpoint restore`
            await self.reload()  # shows who holds the thread
            self.show_failure("Restore refused", exc)
            return
        option = None if cp.workspace is None else "also restore the workspace files"
        question = (
            f"Restore thread {cp.thread_id} to checkpoint {cp.id} (step {cp.step})?\n"
            "This writes a new head with that checkpoint's state; nothing is deleted."
        )
        if cp.workspace is not None:
            question += f"\nWorkspace: {cp.workspace.workspace} (a rescue snapshot is taken first)"

        async def done(answer: Confirmation | None) -> None:
            if answer is None:
                return
            try:
                new, report = await self.source.restore(cp.id, workspace=answer.option)
            except KeepupError as exc:
                self.show_failure("Restore failed", exc)
                return
            lines = [f"restored thread {new.thread_id} to checkpoint {cp.id}: new head {new.id}"]
            if report is not None:
                lines.append(
                    f"files: {len(report.changed)} changed, {len(report.created)} brought back, "
                    f"{len(report.removed)} removed"
                )
                if report.rescue_commit:
                    lines.append(f"the files as they were are kept in snapshot {report.rescue_commit}")
            await self.reload()
            self.app.push_screen(NoticeScreen("Restored", "\n".join(lines)))

        self.app.push_screen(ConfirmScreen("Restore", question, option=option), done)

    @guarded("Fork failed")
    async def action_fork(self) -> None:
        cp = await self.current()
        if cp is None:
            return
        thread = await self.source.thread(cp.thread_id)
        default = f"fork of {thread.name or thread.id} at step {cp.step}"

        async def done(answer: Confirmation | None) -> None:
            if answer is None:
                return
            try:
                fork = await self.source.fork(cp.id, name=answer.text)
            except KeepupError as exc:
                self.show_failure("Fork failed", exc)
                return
            await self.reload()
            self.app.push_screen(
                NoticeScreen("Forked", f"forked checkpoint {cp.id} into thread {fork.id} ({fork.name!r})")
            )

        question = (
            f"Start a new thread from checkpoint {cp.id} (step {cp.step})? The original is untouched.\nName:"
        )
        self.app.push_screen(ConfirmScreen("Fork", question, text=default), done)

    @guarded("Diff failed")
    async def action_diff(self) -> None:
        cp = await self.current()
        if cp is None:
            return
        base = self.host.marked or cp.parent_id
        if base is None or base == cp.id:
            self.app.push_screen(
                NoticeScreen("Diff", "this checkpoint has no parent; mark another one with m to compare")
            )
            return
        try:
            comparison = await self.source.compare(base, cp.id)
        except KeepupError as exc:
            self.show_failure("Diff failed", exc)
            return
        await self.app.push_screen(DiffScreen(comparison))


class CheckpointsScreen(_CheckpointActions):
    """A thread's checkpoints, newest first, with the forks that start from each."""

    BINDINGS = [
        Binding("enter", "open", "conversation", show=False),
        Binding("d", "diff", "diff"),
        Binding("m", "mark", "mark"),
        Binding("r", "restore", "restore"),
        Binding("f", "fork", "fork"),
        Binding("o", "open_fork", "open fork"),
        Binding("e", "events", "events"),
    ]

    def __init__(self, thread_id: str) -> None:
        super().__init__()
        self.thread_id = thread_id
        self.forks: dict[str, list[Thread]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="context")
        yield DataTable(id="checkpoints", cursor_type="row", zebra_stripes=True)
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#checkpoints", DataTable)
        for name in ("checkpoint", "step", "source", "status", "label", "files", "forks"):
            table.add_column(name, key=name)
        await self.reload()

    @guarded("Could not read the thread")
    async def reload(self) -> None:
        thread = await self.source.thread(self.thread_id)
        checkpoints = await self.source.checkpoints_of(self.thread_id)
        self.forks = await self.source.forks_of(self.thread_id)
        lease = await self.source.lease(self.thread_id)
        context = Text.assemble((thread.name or "(unnamed)", "bold"), "  ", (thread.id, "dim"))
        if thread.forked_from is not None:
            context.append(f"\n⑂ forked from checkpoint {thread.forked_from}", style="cyan")
        if lease is not None:
            context.append(
                f"\n● run {run_id_of_holder(lease.holder)} holds this thread until {_when(lease.expires_at)}",
                style="bold red",
            )
        marked = self.host.marked
        if marked:
            context.append(f"\nmarked for diff: {marked}", style="yellow")
        self.query_one("#context", Static).update(context)
        table = self.query_one("#checkpoints", DataTable)
        row = table.cursor_row
        table.clear()
        ids = unique_prefixes([c.id for c in checkpoints])
        for cp in checkpoints:
            forks = self.forks.get(cp.id, [])
            table.add_row(
                ids[cp.id] + (" *" if cp.id == marked else ""),
                cp.step,
                cp.source.value,
                str(cp.state.get("status", "-")),
                cp.label or "-",
                "-" if cp.workspace is None else cp.workspace.commit[:8],
                ""
                if not forks
                else f"⑂ {len(forks)} " + preview(", ".join(f.name or f.id for f in forks), 24),
                key=cp.id,
            )
        if checkpoints:
            table.move_cursor(row=min(row, len(checkpoints) - 1))

    async def current(self) -> Checkpoint | None:
        key = self.selected_key(self.query_one("#checkpoints", DataTable))
        return None if key is None else await self.source.checkpoint(key)

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            await self.app.push_screen(ConversationScreen(str(event.row_key.value)))

    async def action_open(self) -> None:
        key = self.selected_key(self.query_one("#checkpoints", DataTable))
        if key is not None:
            await self.app.push_screen(ConversationScreen(key))

    async def action_mark(self) -> None:
        key = self.selected_key(self.query_one("#checkpoints", DataTable))
        self.host.marked = None if key == self.host.marked else key
        await self.reload()

    @guarded("Could not open the fork")
    async def action_open_fork(self) -> None:
        key = self.selected_key(self.query_one("#checkpoints", DataTable))
        forks = self.forks.get(key or "", [])
        if not forks:
            self.app.push_screen(NoticeScreen("Forks", "no thread was forked from this checkpoint"))
            return
        await self.app.push_screen(CheckpointsScreen(forks[-1].id))

    async def action_events(self) -> None:
        await self.app.push_screen(EventsScreen(self.thread_id))


class ConversationScreen(_CheckpointActions):
    """One checkpoint: where it sits, and its ``messages`` channel as a chat."""

    BINDINGS = [
        Binding("d", "diff", "diff"),
        Binding("r", "restore", "restore"),
        Binding("f", "fork", "fork"),
    ]

    def __init__(self, checkpoint_id: str) -> None:
        super().__init__()
        self.checkpoint_id = checkpoint_id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="context")
        yield VerticalScroll(id="chat")
        yield Footer()

    async def on_mount(self) -> None:
        await self.reload()

    async def current(self) -> Checkpoint:
        return await self.source.checkpoint(self.checkpoint_id)

    @guarded("Could not read the checkpoint")
    async def reload(self) -> None:
        cp = await self.current()
        context = Text.assemble(
            ("checkpoint ", "dim"),
            cp.id,
            ("  step ", "dim"),
            str(cp.step),
            ("  ", ""),
            (cp.source.value, "cyan"),
            ("  status ", "dim"),
            str(cp.state.get("status", "-")),
        )
        if cp.label:
            context.append(f"  “{cp.label}”", style="yellow")
        error = cp.state.get("error")
        if isinstance(error, dict) and error.get("message"):
            context.append(f"\nerror: {error['message']}", style="red")
        self.query_one("#context", Static).update(context)
        chat = self.query_one("#chat", VerticalScroll)
        await chat.remove_children()
        blocks = chat_of(cp.state.get("messages"))
        widgets: list[Static] = []
        if len(blocks) > MAX_MESSAGES:
            widgets.append(
                Static(
                    f"… {len(blocks) - MAX_MESSAGES} earlier messages not shown "
                    f"(`keepup checkpoint show {cp.id} --json` has them all)",
                    classes="note",
                    markup=False,
                )
            )
            blocks = blocks[-MAX_MESSAGES:]
        for block in blocks:
            widget = Static(block.body, classes=f"message {block.role}", markup=False)
            widget.border_title = escape(block.title)
            widgets.append(widget)
        others = {k: v for k, v in cp.state.items() if k != "messages"}
        if not blocks:
            widgets.append(Static("no messages in this checkpoint's state", classes="note"))
        if others:
            text = json.dumps(others, ensure_ascii=False, indent=1, default=str)
            if len(text) > MAX_CHANNELS_TEXT:
                text = text[:MAX_CHANNELS_TEXT] + "\n… (clipped; `keepup checkpoint show` prints them all)"
            rest = Static(
                text,
                classes="message channels",
                markup=False,
            )
            rest.border_title = "other channels"
            widgets.append(rest)
        await chat.mount_all(widgets)


class DiffScreen(_Base):
    """What changed from one checkpoint to another: state paths, then files and their patches."""

    def __init__(self, comparison: Comparison) -> None:
        super().__init__()
        self.comparison = comparison

    def compose(self) -> ComposeResult:
        c = self.comparison
        yield Header()
        yield Static(
            Text.assemble(
                ("diff ", "dim"), c.a.id[:13], f" (step {c.a.step}) → ", c.b.id[:13], f" (step {c.b.step})"
            ),
            id="context",
        )
        with VerticalScroll(id="diff"):
            if c.files is None:
                yield Static(f"files: {c.files_note}", id="files-diff", markup=False)
            elif not c.files:
                yield Static("files: unchanged", id="files-diff")
            else:
                files = Table(
                    title=f"files: {len(c.files)} changed",
                    box=box.SIMPLE_HEAD,
                    expand=True,
                    title_justify="left",
                )
                files.add_column("path", ratio=3, no_wrap=True, overflow="ellipsis")
                files.add_column("change", no_wrap=True)
                for f in c.files:
                    files.add_row(escape(f.path), f.status.value)
                yield Static(files, id="files-diff")
            state = Table(
                title=f"state: {len(c.state)} changes", box=box.SIMPLE_HEAD, expand=True, title_justify="left"
            )
            state.add_column("path", ratio=2, no_wrap=True, overflow="ellipsis")
            state.add_column("change", no_wrap=True)
            state.add_column("new value", ratio=4, no_wrap=True, overflow="ellipsis")
            for e in c.state:
                new = e.new if isinstance(e.new, str) else json.dumps(e.new, ensure_ascii=False, default=str)
                state.add_row(
                    escape(e.path), e.kind.value, escape(preview("-" if e.new is None else new, 200))
                )
            yield Static(state, id="state-diff")
            for f in c.files or ():
                if f.patch:
                    yield Static(Syntax(f.patch, "diff", theme="ansi_dark", word_wrap=True), classes="patch")
        yield Footer()


class EventsScreen(_Base):
    """Recorded messages, newest first (of one thread when opened from it)."""

    BINDINGS = [Binding("enter", "open", "show", show=False), Binding("slash", "search", "search")]

    def __init__(self, thread_id: str | None = None) -> None:
        super().__init__()
        self.thread_id = thread_id
        self.events: dict[str, Event] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="context")
        yield DataTable(id="events", cursor_type="row", zebra_stripes=True)
        yield Footer()

    @guarded("Could not read the recorded messages")
    async def on_mount(self) -> None:
        table = self.query_one("#events", DataTable)
        for name in ("time", "topic", "sender", "message"):
            table.add_column(name, key=name)
        events = await self.source.recent_events(thread_id=self.thread_id)
        self.events = {e.id: e for e in events}
        where = "all threads" if self.thread_id is None else f"thread {self.thread_id}"
        self.query_one("#context", Static).update(
            Text.assemble(f"{len(events)} recorded messages", ("  ·  ", "dim"), where)
        )
        for e in events:
            table.add_row(_when(e.created_at), e.topic, e.sender or "-", preview(text_of(e), 40), key=e.id)

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        found = self.events.get(str(event.row_key.value))
        if found is not None:
            await self.app.push_screen(EventScreen(found))

    async def action_open(self) -> None:
        found = self.events.get(self.selected_key(self.query_one("#events", DataTable)) or "")
        if found is not None:
            await self.app.push_screen(EventScreen(found))

    async def action_search(self) -> None:
        await self.app.push_screen(SearchScreen())


class EventScreen(_Base):
    """One recorded message in full."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def compose(self) -> ComposeResult:
        e = self.event
        yield Header()
        head = Text.assemble(("event ", "dim"), e.id, ("  topic ", "dim"), e.topic)
        head.append(f"\n{_when(e.created_at)}  from {e.sender or '-'} to {e.recipient or '-'}", style="dim")
        if e.thread_id:
            head.append(f"  thread {e.thread_id}", style="dim")
        yield Static(head, id="context")
        with VerticalScroll(id="event"):
            payload = e.payload if not isinstance(e.payload, str) else {"text": e.payload}
            yield Static(
                json.dumps(
                    {"payload": payload, "metadata": e.metadata}, ensure_ascii=False, indent=2, default=str
                ),
                markup=False,
            )
        yield Footer()


class SearchScreen(_Base):
    """Search recorded messages; Enter in the box searches, Enter on a result shows it."""

    BINDINGS = [Binding("slash", "focus_query", "new search")]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.query_text = query
        self.hits: dict[str, SearchHit] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(self.query_text, placeholder="search recorded messages, then Enter", id="query")
        yield Static(id="context")
        yield DataTable(id="hits", cursor_type="row", zebra_stripes=True)
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#hits", DataTable)
        for name in ("time", "topic", "sender", "match"):
            table.add_column(name, key=name)
        if self.query_text:
            await self.search(self.query_text)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        await self.search(event.value)

    @guarded("Search failed")
    async def search(self, query: str) -> None:
        table = self.query_one("#hits", DataTable)
        table.clear()
        self.hits = {}
        context = self.query_one("#context", Static)
        if not query.strip():
            context.update("type what to look for")
            return
        hits = await self.source.search(query)
        self.hits = {h.event.id: h for h in hits}
        context.update(Text.assemble(f"{len(hits)} messages match ", (repr(query.strip()), "bold")))
        for h in hits:
            table.add_row(
                _when(h.event.created_at), h.event.topic, h.event.sender or "-", _snippet(h), key=h.event.id
            )
        if hits:
            table.focus()

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        found = self.hits.get(str(event.row_key.value))
        if found is not None:
            await self.app.push_screen(EventScreen(found.event))

    def action_focus_query(self) -> None:
        self.query_one("#query", Input).focus()


def _snippet(hit: SearchHit, width: int = 44) -> Text:
    """The text around the first match, on one line, the match highlighted."""
    flat = re.sub(r"\s", " ", hit.text)  # one for one: the match offsets stay right
    if hit.end <= hit.start:
        return Text(preview(flat, width))
    start = max(0, hit.start - width // 3)
    end = min(len(flat), max(hit.end, start + width))
    out = Text(("…" if start else "") + flat[start : hit.start])
    out.append(flat[hit.start : hit.end], style="bold black on yellow")
    out.append(flat[hit.end : end] + ("…" if end < len(flat) else ""))
    return out
