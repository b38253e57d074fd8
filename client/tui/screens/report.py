"""Before a report: show exactly what would be sent, then ask to confirm."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from client.store import HIDDEN_BY_CHOICE, StoredMessage
from client.tui.text import TimeFormat, safe

REPORT_LIMIT = 5  # DESIGN: a report carries at most the last five messages from the business

NOT_YET_SENT = (
    "Confirming signs these messages and seals them to the moderation desk's key: the relay "
    "carries the report but cannot read it. A copy stays in your chat with @moderation."
)


def report_item(message: StoredMessage, time_format: TimeFormat) -> Text:
    text = Text(f"{time_format(message.sent_at)}  ", "dim", end="")
    if message.label:
        text.append(f"[{message.label}] ", "bold")
    if message.quarantine_reason == HIDDEN_BY_CHOICE:
        text.append(f"hidden by your choices: {safe(message.quarantine_detail)}", "yellow")
    elif message.status == "quarantined":
        text.append(f"could not verify: {safe(message.quarantine_reason)}", "red")
    else:
        text.append(safe(message.text))
    return text


class ReportModal(ModalScreen[bool]):
    """Dismisses True when the person confirms the report."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(
        self, business: str, name: str, messages: list[StoredMessage], time_format: TimeFormat
    ) -> None:
        super().__init__(classes="sealpost-modal")
        self.business = business
        self.business_name = name
        self.messages = messages[-REPORT_LIMIT:]
        self.time_format = time_format

    def compose(self) -> ComposeResult:
        title = Text("Report ", "bold", end="")
        title.append(safe(self.business_name, keep_newlines=False), "bold")
        title.append(f" @{safe(self.business)}", "dim")
        # The whole dialog scrolls: at 80x24 its buttons were cut off below the messages.
        with VerticalScroll(classes="modal-body", id="report"):
            yield Label(title, classes="modal-title")
            yield Static(
                Text(
                    f"A report contains exactly the following: the business handle "
                    f"@{safe(self.business)} and these {len(self.messages)} message(s) it sent "
                    f"you (at most the last {REPORT_LIMIT}), sealed to the moderation desk's key. "
                    "Nothing else: not your other chats, not your contacts."
                )
            )
            with VerticalScroll(id="report-messages"):
                if not self.messages:
                    yield Static(Text("(no messages from this business)", "dim"))
                for message in self.messages:
                    yield Static(report_item(message, self.time_format), classes="report-item")
            yield Static(Text(NOT_YET_SENT, "italic"), classes="modal-help", id="report-note")
            with Horizontal(classes="modal-buttons"):
                yield Button("Send report", id="confirm", variant="warning")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        # Focused, so a short terminal scrolls the buttons into view (and Enter sends nothing).
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")
