"""The chat list: a fuzzy filter over conversations with unread badges and states."""

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from client.tui.messages import ConversationSelected
from client.tui.text import VERIFIED_STYLE, lookalike_note, one_line, safe

PREVIEW_CHARS = 32  # fits the sidebar on one line; the list must not wrap previews


@dataclass(frozen=True)
class ChatRow:
    """One conversation as the list shows it."""

    peer: str
    name: str
    business: bool
    verified: bool
    unread: int
    preview: str
    marketing: bool = False  # the newest message is marketing
    blocked: bool = False
    promotions_off: bool = False
    notify: str = "toast"  # toast | bell | off (off shows as "muted")
    looks_like: str = ""  # the warning when the name looks like a verified business's
    request: bool = False  # a message request: listed apart, its unread count quiet


def row_prompt(row: ChatRow) -> Text:
    text = Text(end="")
    loud = row.unread and not row.request
    text.append(safe(row.name, keep_newlines=False), "bold" if loud else "")
    # The badge and the handle are drawn by the app beside the name, never inside it: a name
    # holds no check mark or style, so it cannot draw the badge, and who is not a verified
    # business is always known by handle too.
    if row.verified:
        text.append(" ")
        text.append(" ✔ ", VERIFIED_STYLE)
    elif row.name != row.peer:
        text.append(f" @{row.peer}", "dim")
    if row.unread:
        text.append(f" ({row.unread})", "bold reverse" if loud else "dim")
    states = []
    if row.blocked:
        states.append(("blocked", "bold red"))
    elif row.promotions_off:
        states.append(("promotions off", "yellow"))
    if row.marketing and not row.blocked:
        states.append(("Marketing", "bold magenta"))
    if row.notify == "off":
        states.append(("muted", "dim italic"))
    elif row.notify == "bell":
        states.append(("bell", "dim"))
    for label, style in states:
        text.append("  ")
        text.append(label, style)
    if row.looks_like:
        text.append("\n")
        text.append_text(lookalike_note(row.looks_like))
    text.append("\n")
    text.append(one_line(row.preview, PREVIEW_CHARS) or " ", "dim")
    return text


class ChatList(Vertical):
    """Filter input above the list; selecting a row posts ConversationSelected."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[ChatRow] = []
        self.current: str | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Filter chats…", id="chat-filter", compact=True)
        yield OptionList(id="chat-options", markup=False)

    @property
    def options(self) -> OptionList:
        return self.query_one("#chat-options", OptionList)

    def set_rows(self, rows: list[ChatRow]) -> None:
        self.rows = rows
        self._refill()

    def update_row(self, row: ChatRow) -> None:
        """Redraw one conversation's row in place (same peer, new state)."""
        self.rows = [row if r.peer == row.peer else r for r in self.rows]
        try:
            self.options.replace_option_prompt(row.peer, row_prompt(row))
        except OptionDoesNotExist:  # filtered out: nothing on screen to redraw
            pass

    def show_current(self) -> None:
        """Highlight the open conversation, if the filter shows it."""
        if self.current is None:
            return
        try:
            index = self.options.get_option_index(self.current)
        except OptionDoesNotExist:
            return
        if self.options.highlighted != index:
            self._highlight(index)

    def visible_peers(self) -> list[str]:
        return [o.id for o in self.options.options if o.id]

    def _refill(self) -> None:
        query = self.query_one("#chat-filter", Input).value.strip()
        rows = self.rows
        if query:
            matcher = Matcher(query)
            scored = [(matcher.match(f"{r.name} {r.peer}"), r) for r in rows]
            rows = [r for score, r in sorted(scored, key=lambda p: -p[0]) if score > 0]
        # Requests go under their own heading, after every accepted conversation.
        requests = [r for r in rows if r.request]
        rows = [r for r in rows if not r.request] + requests
        options = self.options
        items = [Option(row_prompt(r), id=r.peer) for r in rows]
        if requests:
            heading = Text(f"Message requests · {len(requests)}", "dim italic")
            items.insert(len(rows) - len(requests), Option(heading, disabled=True))
        options.set_options(items)
        if self.current is not None and any(r.peer == self.current for r in rows):
            self._highlight(options.get_option_index(self.current))

    def _highlight(self, index: int) -> None:
        """Move the highlight for the app, not the person: no chat is opened by it.

        Its OptionHighlighted would be handled later, when the app may have opened another
        chat meanwhile, and would open this one again (seen as a flaky unread count)."""
        with self.prevent(OptionList.OptionHighlighted):
            self.options.highlighted = index

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._refill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter in the filter opens the best match.
        event.stop()
        peers = self.visible_peers()
        if peers:
            self.select(peers[0])
            self.options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.select(event.option.id)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # Moving through the list opens chats as you go, like a mail client's preview.
        event.stop()
        stale = event.option_index != self.options.highlighted  # moved on since
        if event.option.id and event.option.id != self.current and self.options.has_focus:
            if not stale:
                self.select(event.option.id)

    def select(self, peer: str) -> None:
        if peer != self.current:
            self.current = peer
            self.post_message(ConversationSelected(peer))
