"""The composer: one line of input; Enter sends. What is typed is never lost."""

from textual.widgets import Input

from client.tui.messages import ReplySubmitted


class Composer(Input):
    """Posts ReplySubmitted and clears itself; the app queues the text before any network I/O."""

    def __init__(self, *, cursor_blink: bool = True, id: str | None = None) -> None:
        super().__init__(placeholder="Write a message… (Enter sends)", id=id, max_length=4000)
        self.cursor_blink = cursor_blink
        self.peer: str | None = None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text or self.peer is None:
            return
        self.post_message(ReplySubmitted(self.peer, text))
        self.value = ""
