"""Real buttons for the selected template message, so keyboard and mouse users can act on it."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Label

from client.store import StoredMessage
from client.tui.messages import MarketingDismissed, TemplateButtonPressed
from client.tui.signals import campaign_of
from client.tui.widgets.message_render import button_label, is_marketing, template_of
from shared.templates import MAX_BUTTONS, STOP_PROMOTIONS


class ActionBar(Horizontal):
    """Hidden unless the selected message has buttons.

    The bar holds ``MAX_BUTTONS`` buttons from the start and only relabels and shows the ones a
    message needs: switching chats or moving the selection never mounts widgets.
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.message: StoredMessage | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="action-caption")
        for index in range(MAX_BUTTONS):
            button = Button("", id=f"template-button-{index}", compact=True)
            button.display = False
            yield button
        dismiss = Button("Dismiss ✕", id="dismiss-marketing", compact=True)
        dismiss.tooltip = Text(DISMISS_TIP)
        dismiss.display = False
        yield dismiss

    async def show_for(self, message: StoredMessage | None) -> None:
        """Kept awaitable for callers; the work is synchronous (see :meth:`show`)."""
        self.show(message)

    def show(self, message: StoredMessage | None) -> None:
        if message is self.message or (
            message and self.message and message.msg_id == self.message.msg_id
        ):
            return
        self.message = message
        template = template_of(message) if message else None
        buttons = template.buttons if (message and template) else []
        self.display = bool(buttons)
        if not (message and buttons):
            return
        caption = "Marketing message:" if is_marketing(message) else "Actions:"
        self.query_one("#action-caption", Label).update(Text(caption))
        self.query_one("#dismiss-marketing").display = bool(
            is_marketing(message) and campaign_of(message)
        )
        for index in range(MAX_BUTTONS):
            widget = self.query_one(f"#template-button-{index}", Button)
            if index >= len(buttons):
                widget.display = False
                continue
            button = buttons[index]
            stop = button.type == "quick_reply" and button.text == STOP_PROMOTIONS
            widget.label = Text(button_label(button))
            widget.variant = "error" if stop else "default"
            widget.tooltip = Text(_tooltip(button.type, button.url))
            widget.display = True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "dismiss-marketing":
            if self.message:
                self.post_message(MarketingDismissed(self.message))
            return
        template = template_of(self.message) if self.message else None
        if not (self.message and template and event.button.id):
            return
        index = int(event.button.id.rsplit("-", 1)[1])
        if index < len(template.buttons):
            self.post_message(TemplateButtonPressed(self.message, template.buttons[index]))


DISMISS_TIP = (
    "Not interested: nothing is deleted; the campaign's anonymous, noised report counts it "
    "(if optional signals are on)"
)


def _tooltip(kind: str, url: str | None) -> str:
    if kind == "url":
        return f"Open {url} (also copied to the clipboard)"
    if kind == "copy_code":
        return "Copy the code to the clipboard"
    return "Send this as a reply"
