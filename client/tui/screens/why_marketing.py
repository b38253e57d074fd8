"""Why am I seeing this? (the chat's "Why this? ⓘ" button on a marketing message): who sent
it, that it is marketing, the person's marketing level, and the ways to stop it. Everything
said here is the app's own text; the business's words appear only as its (escaped) name."""

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from client.tui.text import safe


@dataclass(frozen=True)
class WhyMarketing:
    business: str
    name: str
    verified: bool
    level: str | None  # the person's marketing level as Settings words it; None: not loaded
    weekly_limit: int | None
    accepted: bool  # the person wrote to or accepted the business
    stop_key: str  # how the key that stops promotions is shown


def explanation(why: WhyMarketing) -> list[Text]:
    """The screen's paragraphs, in order."""
    who = Text(end="")
    who.append(safe(why.name, keep_newlines=False), "bold")
    who.append(f" @{safe(why.business)}", "dim")
    who.append(" is a verified business." if why.verified else " is a business, not verified.")
    what = Text(
        "The relay delivered this as marketing: the business registered its template in that "
        "category, paid for each copy, and the app labels it so. A promotion in a utility "
        "template would have been hidden by your choices."
    )
    if why.level is None:
        level = Text("Your marketing level could not be loaded (offline?).")
    else:
        level = Text("Your marketing level: ", end="")
        level.append(why.level, "bold")
        if why.weekly_limit:
            level.append(f" ({why.weekly_limit} a week)")
        level.append(". The relay lets through only the marketing that level allows.")
    how = (
        "You accepted this business or wrote to it."
        if why.accepted
        else "You never wrote to it: this is a message request, held to a few messages."
    )
    stop = Text(
        f"To stop it: Stop promotions (the button under the message, or {why.stop_key}) for "
        "this business only; a lower marketing level in Settings (F2) for every business; "
        "or block it (Ctrl+B). Not interested only tells the campaign's anonymous, noised "
        "report."
    )
    return [who, what, level, Text(how), stop]


class WhyMarketingScreen(ModalScreen[None]):
    """Escape or Close dismisses it; it changes nothing."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, why: WhyMarketing) -> None:
        super().__init__(classes="sealpost-modal")
        self.why = why

    def compose(self) -> ComposeResult:
        # Scrolls rather than cut anything at 80x24.
        with VerticalScroll(classes="modal-body", id="why-marketing-body"):
            yield Label(Text("Why am I seeing this?", "bold"), classes="modal-title")
            for paragraph in explanation(self.why):
                yield Static(paragraph, classes="why-paragraph")
            with Horizontal(classes="modal-buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)
