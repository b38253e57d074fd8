"""The safety number with a contact: compare it, mark it verified, or accept a changed key.

Opened from the chat (a key), from the warning shown when a contact's key changed, and before
sending to a contact whose key changed: nothing is sealed to a new key until the person has
seen its safety number here and accepted it.
"""

from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from client.tui.text import safe
from shared.safety_numbers import format_safety_number

SafetyChoice = Literal["accept", "verify", "unverify"]
CHOICES: dict[str, SafetyChoice] = {"accept": "accept", "verify": "verify", "unverify": "unverify"}


@dataclass(frozen=True)
class SafetyView:
    """What the dialog shows about one contact (all computed by the client core)."""

    handle: str
    name: str
    number: str  # over the pinned keys
    verified: bool  # the person compared it before
    new_number: str | None = None  # over the changed keys waiting to be accepted


COMPARE = (
    "Compare these 60 digits with the ones on {name}'s device, in person or over a channel "
    "you trust. If they match, nobody (not even the relay) swapped either of your keys."
)
CHANGED = (
    "{name}'s safety number changed: the directory now gives @{handle} a different key. "
    "It may be a new phone, or someone standing in for them. Messages signed with the new key "
    "are held, and nothing is sealed to it, until you accept it."
)


class SafetyNumberModal(ModalScreen[SafetyChoice | None]):
    """Dismisses with the person's choice, or None (Close / Escape / Cancel)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, view: SafetyView, *, sending: bool = False) -> None:
        super().__init__(classes="sealpost-modal")
        self.view = view
        self.sending = sending  # opened because the person tried to send: say so

    def compose(self) -> ComposeResult:
        view = self.view
        name = safe(view.name, keep_newlines=False)
        handle = safe(view.handle)
        title = Text("Safety number with ", "bold", end="")
        title.append(name, "bold")
        title.append(f"  @{handle}", "dim")
        changed = view.new_number is not None
        with Vertical(classes="modal-body", id="safety-number"):
            yield Label(title, classes="modal-title")
            if changed:
                assert view.new_number is not None
                yield Static(
                    Text(f"⚠ {CHANGED.format(name=name, handle=handle)}", "bold red"),
                    id="safety-warning",
                )
                yield Static(Text("New safety number:", "bold"))
                yield Static(
                    Text(format_safety_number(view.new_number), "bold"), id="safety-digits"
                )
                yield Static(
                    Text("Previous: " + " ".join(format_safety_number(view.number).split()), "dim"),
                    id="safety-previous",
                )
            else:
                yield Static(Text(format_safety_number(view.number), "bold"), id="safety-digits")
                yield Static(
                    Text("Verified: you compared it with them", "green")
                    if view.verified
                    else Text("Not verified yet", "yellow"),
                    id="safety-state",
                )
            help_text = COMPARE.format(name=name)
            if self.sending:
                help_text = "Your message is not sent yet. " + help_text
            yield Static(Text(help_text), classes="modal-help")
            with Horizontal(classes="modal-buttons"):
                if changed:
                    label = "Accept and send" if self.sending else "Accept new key"
                    yield Button(label, id="accept", variant="warning")
                elif view.verified:
                    yield Button("Clear verified", id="unverify")
                else:
                    yield Button("Mark as verified", id="verify", variant="success")
                yield Button("Cancel" if self.sending else "Close", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(CHOICES.get(event.button.id or ""))
