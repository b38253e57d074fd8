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
and one word from a fixed list: not read, read, clicked or dismissed. Nothing else can be put
in it: no handle, no message id, no text. Blocking, stopping promotions and reporting are never
in it: the relay carries out the first two for you, so it knows them already, and a report
goes sealed to the moderation desk.

- **Randomized response**: before it leaves, the word is replaced at random half the time (by
  one of the other three), so no report says anything certain about you: each costs a privacy
  loss of ε = ln 3 (about 1.1). A privacy budget limits how many reports carry a real answer:
  4 a day, 30 over any 30 days, and 20 about any one business's campaigns **ever**. Beyond it,
  reports say "no signal" and nothing about you.
- **Random delay**: a report leaves at a random moment within a day of the delivery, never at
  the moment you read or click, so its timing cannot be matched with you.
- **No credentials**: reports go on a separate connection that carries no account key, handle
  or signature. A one-time blind token proves you received the campaign without saying who
  you are, and stops anyone sending two reports.
- **Estimates only**: the platform adds the noisy reports up and publishes estimates with a
  margin of error and more noise of its own, once per campaign; businesses never see a single
  person's report.
- You can turn optional signals off in Settings (F2): reports still go out, but say "no
  signal". Block, stop promotions and report are explicit choices and still take effect.

**Reports** are the exception you make on purpose: before anything goes, you see exactly what
would be sent (at most the last five messages from that business).
"""


def budget_line(business: str, spent: float, cap: float | None) -> str:
    """What one business's reports have cost this device, in words (trusted text only: the
    handle is a registered one, [a-z0-9_] only)."""
    if cap is None:
        return f"**@{business}**: reports about its campaigns have cost ε = {spent:.1f} so far."
    left = max(cap - spent, 0.0)
    tail = (
        "its reports now say “no signal”, for good."
        if left < 1e-9
        else f"{left:.1f} left; after that its reports say “no signal”, for good."
    )
    return (
        f"**@{business}**: reports about its campaigns have cost ε = {spent:.1f} of the "
        f"{cap:.1f} this device will ever spend on them; {tail}"
    )


class PrivacyExplainer(ModalScreen[None]):
    """The explainer; opened from a business's chat, with what that business's reports have
    cost this device so far."""

    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]

    def __init__(self, budget: str | None = None, **kwargs: str) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.budget = budget

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-body", id="privacy-explainer"):
            yield Label("What is shared, and what is not", classes="modal-title")
            with VerticalScroll():
                if self.budget:
                    yield Markdown(self.budget, id="privacy-budget")
                yield Markdown(EXPLAINER)
            yield Button("Close", id="close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)
