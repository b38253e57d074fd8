"""Textual messages exchanged between the app, its screens and widgets."""

from dataclasses import dataclass
from typing import Literal

from textual.message import Message

from client.store import StoredMessage
from client.tui.state import Answer
from shared.api import Preferences
from shared.templates import RenderedButton


@dataclass
class MessageArrived(Message):
    """The push stream stored a new message (already verified or quarantined)."""

    message: StoredMessage


@dataclass
class ConnectionStateChanged(Message):
    online: bool
    detail: str = ""


@dataclass
class ConversationSelected(Message):
    """The person picked a conversation in the chat list."""

    peer: str


@dataclass
class ConversationChanged(Message):
    """Messages of ``peer`` changed in the store (sent, queued, delivered)."""

    peer: str


@dataclass
class ReplySubmitted(Message):
    peer: str
    text: str


@dataclass
class TemplateButtonPressed(Message):
    """A button under a template message was activated (click, key or action bar)."""

    message: StoredMessage
    button: RenderedButton


@dataclass
class RequestAnswered(Message):
    """The person answered a message request with the app's own bar."""

    peer: str
    choice: Literal["accept", "block", "report"]


@dataclass
class MarketingAnswered(Message):
    """The person said they are (not) interested in a marketing message; nothing is deleted.
    "Not interested" is the dismissal the campaign's anonymous report may count."""

    message: StoredMessage
    answer: Answer


@dataclass
class WhyMarketingAsked(Message):
    """The person asked why they see this marketing message."""

    message: StoredMessage


@dataclass
class PreferencesChanged(Message):
    """The relay's copy of the person's choices, after a fetch or a change."""

    prefs: Preferences
