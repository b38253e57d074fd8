"""Before a business's quick reply leaves: say what it is and ask.

A quick reply is the business's button, pressed in the person's name: it sends the button's
text to the business as a message from the person, and nothing else. It changes none of the
person's settings and, unlike a typed message, opens no window for the business's free-form
messages (the relay sees its category, ``quick_reply``).
"""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from client.tui.text import one_line, safe

EXPLAINED = (
    "This sends the text above to the business as a message from you. It changes none of your "
    "settings, and it does not let the business write to you freely: only a message you type "
    "does that. To stop its promotions, block or report it, use the app's own controls."
)


class QuickReplyModal(ModalScreen[bool]):
    """Dismisses True when the person confirms sending the quick reply."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, business: str, name: str, text: str) -> None:
        super().__init__(classes="sealpost-modal")
        self.business = business
        self.business_name = name
        self.text = text

    def compose(self) -> ComposeResult:
        title = Text("Send a quick reply to ", "bold", end="")
        title.append(safe(self.business_name, keep_newlines=False), "bold")
        title.append(f" @{safe(self.business)}", "dim")
        with Vertical(classes="modal-body", id="quick-reply"):
            yield Label(title, classes="modal-title")
            yield Static(Text(f"“{one_line(self.text, 120)}”", "italic"), classes="quote")
            yield Static(Text(EXPLAINED), classes="modal-help")
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Send", id="send", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()  # a stray Enter sends nothing

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "send")
