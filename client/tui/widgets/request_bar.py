"""The message-request bar: the app's own Accept / Block / Report, drawn above the composer
when the open conversation is a request, apart from anything a sender's message can draw."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label

from client.tui.messages import RequestAnswered
from client.tui.text import safe


class RequestBar(Vertical):
    """Hidden unless the open conversation is a message request."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.peer: str | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="request-caption")
        with Horizontal(id="request-buttons"):
            yield Button("Accept (Ctrl+Y)", id="request-accept", variant="primary", compact=True)
            yield Button("Block", id="request-block", variant="error", compact=True)
            yield Button("Report…", id="request-report", variant="warning", compact=True)

    def show(self, peer: str | None, name: str = "") -> None:
        """Show the bar for ``peer``'s request, or hide it (None)."""
        self.peer = peer
        self.display = peer is not None
        if peer is None:
            return
        caption = Text("Message request from ", end="")
        caption.append(safe(name, keep_newlines=False), "bold")
        caption.append(f" @{safe(peer)}", "dim")
        caption.append(
            ". You never wrote to them; they cannot see that you read this. "
            "Until you accept, only a few of their messages reach you.",
        )
        self.query_one("#request-caption", Label).update(caption)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if self.peer is None or not event.button.id:
            return
        choice = event.button.id.removeprefix("request-")
        self.post_message(RequestAnswered(self.peer, choice))  # type: ignore[arg-type]
