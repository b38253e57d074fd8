"""Before blocking a business: say what it does and ask. One stray keystroke must not block
anyone (Ctrl+B is a single key), so the dialog opens on Cancel."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from client.tui.text import safe

EXPLAINED = (
    "The relay will refuse its messages to you, marketing and chat alike; it is not told "
    "why, and what it already sent stays here. You can unblock it at any time: Ctrl+B again, "
    "or Settings (F2)."
)


class ConfirmBlockModal(ModalScreen[bool]):
    """Dismisses True when the person confirms blocking ``business``."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, business: str, name: str) -> None:
        super().__init__(classes="sealpost-modal")
        self.business = business
        self.business_name = name

    def compose(self) -> ComposeResult:
        title = Text("Block ", "bold", end="")
        title.append(safe(self.business_name, keep_newlines=False), "bold")
        title.append(f" @{safe(self.business)}", "dim")
        title.append("?", "bold")
        with Vertical(classes="modal-body", id="confirm-block"):
            yield Label(title, classes="modal-title")
            yield Static(Text(EXPLAINED), classes="modal-help")
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Block", id="block", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()  # a stray Enter blocks nobody

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "block")
