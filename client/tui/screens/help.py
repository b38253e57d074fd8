"""Help: what every key does, and where things are."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label, Static

GENERAL = (
    "Left: your chats (type in the filter to find one; Enter opens the best match). Right: the "
    "conversation; ↑/↓ select a message, the buttons of a marketing message appear below it. "
    "Marketing is always labelled. Messages that fail verification are shown as "
    "'could not verify', never as genuine. Ctrl+P opens the command palette."
)

EXTRA_KEYS = [
    ("↑ ↓ / k j", "select a message in the conversation"),
    ("x", "dismiss the selected marketing message (not interested)"),
    ("Tab / Shift+Tab", "move between chat list, conversation, buttons and composer"),
    ("Enter", "send what you typed (queued if the relay is away)"),
    ("Ctrl+P", "command palette"),
]


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened on; the chats' help also says how they work."""

    BINDINGS = [Binding("escape,q,f1", "dismiss(None)", "Close")]

    def __init__(
        self, keys: list[tuple[str, str]], *, title: str = "Sealpost", general: bool = True
    ) -> None:
        super().__init__(classes="sealpost-modal")
        self.keys = keys
        self.title_text = title
        self.general = general

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-body", id="help"):
            yield Label(f"Help · {self.title_text}", classes="modal-title")
            if self.general:
                yield Static(Text(GENERAL))
            with VerticalScroll():
                yield DataTable(id="help-keys", cursor_type="none", zebra_stripes=True)
            yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action")
        for key, description in [*self.keys, *(EXTRA_KEYS if self.general else [])]:
            table.add_row(Text(key, "bold"), Text(description))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)
