"""Above the conversation: who it is with, their state, and the business privacy marker."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label

from client.tui.text import lookalike_note, safe, verified_badge

PRIVACY_MARKER = "ⓘ The platform may receive limited non-personal info"


class ConversationHeader(Vertical):
    def compose(self) -> ComposeResult:
        with Horizontal(id="peer-row"):
            yield Label("", id="peer-name")
            yield Button(PRIVACY_MARKER, id="privacy-marker", compact=True)
        # A line of its own, the full width, so nothing (the privacy marker, a long name)
        # can push the look-alike warning out of sight.
        yield Label("", id="peer-warning")

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
        key_changed: bool = False,
        safety_verified: bool = False,
        looks_like: str = "",
    ) -> None:
        # The badge first, a reverse-video label drawn apart from the name: a name can hold
        # neither a check mark nor a style, so it cannot draw one (shared/display_names.py),
        # and at the start of the line it is never split by wrapping. Then the name and,
        # always, the handle: the header grows rather than cut any of it off.
        text = Text(end="")
        if verified:
            text.append_text(verified_badge(business))
            text.append(" ")
        text.append(safe(name, keep_newlines=False), "bold")
        text.append(f"  @{safe(handle)}", "dim")
        if business and not verified:
            text.append(" (business, not verified)", "dim")
        # Drawn by the app after the name, never part of it: a name cannot fake or hide it.
        if key_changed:
            text.append("  ⚠ safety number changed", "bold red")
        elif safety_verified:
            text.append("  safety number verified", "green")
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
        warning = self.query_one("#peer-warning", Label)
        warning.update(lookalike_note(looks_like) if looks_like else "")
        warning.display = bool(looks_like)

    def clear(self) -> None:
        self.query_one("#peer-name", Label).update(Text("No conversation selected", "dim"))
        self.query_one("#privacy-marker", Button).display = False
        self.query_one("#peer-warning", Label).display = False
