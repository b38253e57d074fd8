"""Above the conversation: who it is with, their state, and the business privacy marker."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Label

from client.tui.text import safe

PRIVACY_MARKER = "ⓘ The platform may receive limited non-personal info"


class ConversationHeader(Horizontal):
    def compose(self) -> ComposeResult:
        yield Label("", id="peer-name")
        yield Button(PRIVACY_MARKER, id="privacy-marker", compact=True)

    def show(
        self,
        *,
        name: str,
        handle: str,
        business: bool,
        verified: bool,
        blocked: bool = False,
        promotions_off: bool = False,
        notify: str = "toast",
    ) -> None:
        text = Text(safe(name, keep_newlines=False), "bold", end="")
        if verified:
            text.append(" ✔ verified business" if business else " ✔", "green")
        elif business:
            text.append(" (business, not verified)", "dim")
        text.append(f"  @{safe(handle)}", "dim")
        if blocked:
            text.append("  blocked", "bold red")
        elif promotions_off:
            text.append("  promotions off", "yellow")
        if notify == "off":
            text.append("  muted", "dim italic")
        elif notify == "bell":
            text.append("  bell", "dim")
        self.query_one("#peer-name", Label).update(text)
        self.query_one("#privacy-marker", Button).display = business

    def clear(self) -> None:
        self.query_one("#peer-name", Label).update(Text("No conversation selected", "dim"))
        self.query_one("#privacy-marker", Button).display = False
