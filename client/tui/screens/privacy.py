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

For each marketing campaign you receive, the app sends **exactly one** anonymous report,
whatever you did, so that a report existing says nothing. It holds only a campaign id, a day
and yes/no answers from a fixed list (delivered, read, clicked, dismissed, stopped promotions,
blocked, reported). Nothing else can be put in it: no handle, no message id, no text.

- **Randomized response**: before it leaves, every yes/no is flipped at random (by default one
  time in four), so no report says anything certain about you. A privacy budget limits how many
  reports carry real answers each day and over any 30 days; beyond it, reports are pure noise.
- **Random delay**: a report leaves at a random moment within a day of the delivery, never at
  the moment you read or click, so its timing cannot be matched with you.
- **No credentials**: reports go on a separate connection that carries no account key, handle
  or signature. A one-time blind token proves you received the campaign without saying who
  you are, and stops anyone sending two reports.
- **Estimates only**: the platform adds the noisy reports up and publishes estimates with a
  margin of error, and only when enough people reported (50 by default); businesses never see
  a single person's report.
- You can turn optional signals off in Settings (F2): reports still go out, but carry only
  noise. Block, stop promotions and report are explicit choices and still take effect.

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
