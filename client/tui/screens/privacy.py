"""The plain-language explainer behind the business privacy marker."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Markdown

# Trusted, fixed text: nothing another party wrote is ever put into this markdown.
EXPLAINER = """\
## What the platform can and cannot see

Your messages are **end-to-end encrypted**. The relay in the middle carries sealed envelopes it
cannot open.

**Never shared**

- the text of any message, in either direction
- your name, your contacts, your other chats
- codes, names or other details a business put in a message to you

**What the relay sees to deliver messages**

- your handle and the business's handle on each envelope, the kind of message (chat, marketing,
  utility) and when it was sent
- your choices, because the relay enforces them: who you blocked, where you stopped
  promotions, your marketing level

**Limited non-personal info (business chats)**

The app may send anonymous signals about marketing messages: one event from a fixed list
(delivered, read, clicked, dismissed, stopped promotions, blocked, reported), a campaign id and
a day. No handle, no message id, no text, no exact time. They are sent separately from your
account, delayed, and randomly noised, so no single signal says anything certain about you;
businesses only see totals over many people.

**Reports** are the exception you make on purpose: before anything goes, you see exactly what
would be sent (at most the last five messages from that business).
"""


class PrivacyExplainer(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-body", id="privacy-explainer"):
            yield Label("What is shared, and what is not", classes="modal-title")
            with VerticalScroll():
                yield Markdown(EXPLAINER)
            yield Button("Close", id="close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)
