"""Search across every conversation, on this device (the relay only holds sealed blobs)."""

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from client.store import LocalStore, StoredMessage
from client.tui.text import TimeFormat, follow_cursor_blink, one_line, safe

RESULT_LIMIT = 200
SNIPPET_CHARS = 90

NOTE = (
    "Searched on this device only: the relay holds sealed envelopes it cannot read, so there is "
    "nothing to search there. Enter opens the conversation at the message."
)


@dataclass(frozen=True)
class SearchHit:
    """What the screen dismisses with: the conversation and the message to open it at."""

    peer: str
    msg_id: str


def snippet(text: str | None, query: str, limit: int = SNIPPET_CHARS) -> Text:
    """One line of ``text`` around the first match of ``query``, matches highlighted."""
    flat = one_line(text, 100_000)
    at = flat.lower().find(query.lower()) if query else -1
    if at > limit // 3:
        flat = "…" + flat[at - limit // 3 :]
    out = Text(one_line(flat, limit), end="")
    if query:
        out.highlight_words([query], "bold reverse", case_sensitive=False)
    return out


def hit_prompt(
    message: StoredMessage, query: str, name: str, unread: int, time_format: TimeFormat
) -> Text:
    head = Text(safe(name, keep_newlines=False), "bold", end="")
    if unread:
        head.append(f" ({unread})", "bold reverse")
    who = " · you wrote" if message.direction == "out" else ""
    head.append(f"{who} · {time_format(message.sent_at)}", "dim")
    if message.label:
        head.append(f"  {safe(message.label, keep_newlines=False)}", "bold magenta")
    head.append("\n")
    head.append_text(snippet(message.text, safe(query, keep_newlines=False)))
    return head


class SearchScreen(ModalScreen[SearchHit | None]):
    """Type to search; the list follows each keystroke. Dismisses with the chosen hit."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("down", "focus_results", "Results", show=False),
    ]

    def __init__(
        self,
        store: LocalStore,
        names: Callable[[str], tuple[str, bool]],
        time_format: TimeFormat,
        query: str = "",
    ) -> None:
        super().__init__(classes="sealpost-modal")
        self.store = store
        self.names = names
        self.time_format = time_format
        self.initial = query
        self.hits: list[StoredMessage] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-body", id="search"):
            yield Label("Search messages", classes="modal-title")
            yield Input(self.initial, placeholder="Words to find…", id="search-input")
            yield Label("", id="search-count")
            yield OptionList(id="search-results", markup=False)
            yield Static(Text(NOTE), classes="modal-help")

    def on_mount(self) -> None:
        follow_cursor_blink(self)
        self.run_search(self.initial)
        self.query_one("#search-input").focus()

    @on(Input.Changed, "#search-input")
    def changed(self, event: Input.Changed) -> None:
        event.stop()
        self.run_search(event.value)

    @on(Input.Submitted, "#search-input")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.hits:
            self.choose(0)

    def run_search(self, query: str) -> None:
        query = query.strip()
        # A local indexed query over the store: fast enough to run on every keystroke.
        self.hits = self.store.search(query, limit=RESULT_LIMIT) if query else []
        unread = {c.peer: c.unread for c in self.store.conversations()} if self.hits else {}
        options = self.query_one("#search-results", OptionList)
        options.set_options(
            Option(
                hit_prompt(
                    m, query, self.names(m.peer)[0], unread.get(m.peer, 0), self.time_format
                ),
                id=m.msg_id,
            )
            for m in self.hits
        )
        count = self.query_one("#search-count", Label)
        if not query:
            count.update(Text("Type to search all your conversations.", "dim"))
        elif not self.hits:
            count.update(Text("No message contains that.", "dim"))
        else:
            more = "+" if len(self.hits) == RESULT_LIMIT else ""
            count.update(Text(f"{len(self.hits)}{more} message(s), newest first", "dim"))

    def action_focus_results(self) -> None:
        if self.hits:
            options = self.query_one("#search-results", OptionList)
            options.focus()
            if options.highlighted is None:
                options.highlighted = 0

    @on(OptionList.OptionSelected, "#search-results")
    def selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.choose(event.option_index)

    def choose(self, index: int) -> None:
        message = self.hits[index]
        self.dismiss(SearchHit(message.peer, message.msg_id))
