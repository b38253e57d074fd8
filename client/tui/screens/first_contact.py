"""First message from a business the person never wrote to: Block, Report or Continue."""

from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from client.tui.text import one_line, safe

FirstContactChoice = Literal["block", "report", "continue"]


class FirstContactModal(ModalScreen[FirstContactChoice | None]):
    """Dismisses with the choice, or None when put off with Escape (asked again later)."""

    BINDINGS = [
        Binding("b", "choose('block')", "Block"),
        Binding("r", "choose('report')", "Report"),
        Binding("c", "choose('continue')", "Continue"),
        Binding("escape", "dismiss(None)", "Later"),
    ]

    def __init__(self, business: str, name: str, verified: bool, preview: str) -> None:
        super().__init__(classes="sealpost-modal")
        self.business = business
        self.business_name = name
        self.verified = verified
        self.preview = preview

    def compose(self) -> ComposeResult:
        title = Text("New business: ", "bold", end="")
        title.append(safe(self.business_name, keep_newlines=False), "bold")
        title.append(
            " ✔ verified" if self.verified else " (not verified)",
            "green" if self.verified else "yellow",
        )
        title.append(f"  @{safe(self.business)}", "dim")
        with Vertical(classes="modal-body", id="first-contact"):
            yield Label(title, classes="modal-title")
            yield Static(
                Text(
                    "You have never written to this business. It wrote to you first:",
                    end="",
                )
            )
            yield Static(Text(one_line(self.preview, 200), "italic"), classes="quote")
            yield Static(
                Text(
                    "Block: it can no longer message you (the relay refuses its messages).\n"
                    "Report: shows what would be sent to the platform's moderation desk first.\n"
                    "Continue: keep the conversation; you can block or report it later."
                ),
                classes="modal-help",
            )
            with Horizontal(classes="modal-buttons"):
                yield Button("Block", id="block", variant="error")
                yield Button("Report…", id="report", variant="warning")
                yield Button("Continue", id="continue", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(event.button.id or "continue")

    def action_choose(self, choice: str) -> None:
        if choice in ("block", "report", "continue"):
            self.dismiss(choice)  # type: ignore[arg-type]
