"""Real buttons for the selected template message, so keyboard and mouse users can act on it.

Row one: the message's own buttons. Row two, for a marketing message only: the app's own
controls (Interested, Not interested, Why am I seeing this?), which no business can draw.
"""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Button, Label

from client.store import StoredMessage
from client.tui.messages import MarketingAnswered, TemplateButtonPressed, WhyMarketingAsked
from client.tui.signals import campaign_of
from client.tui.widgets.message_render import button_label, is_marketing, template_of
from shared.templates import MAX_BUTTONS, STOP_PROMOTIONS, RenderedButton

RESUME_PROMOTIONS = "Resume promotions"


class ActionBar(Vertical):
    """Hidden unless the selected message has buttons.

    The bar holds ``MAX_BUTTONS`` buttons from the start and only relabels and shows the ones a
    message needs: switching chats or moving the selection never mounts widgets.
    """

    # Whether the open chat's business has promotions stopped (set by the main screen from
    # the person's choices): its "Stop promotions" button then reads "Resume promotions".
    promotions_stopped: reactive[bool] = reactive(False, init=False)

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.message: StoredMessage | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="template-buttons"):
            yield Label("", id="action-caption")
            for index in range(MAX_BUTTONS):
                button = Button("", id=f"template-button-{index}", compact=True)
                button.display = False
                yield button
        with Horizontal(id="marketing-controls"):
            yield Button("Interested ✓", id="interested", compact=True, tooltip=INTERESTED_TIP)
            yield Button("Not interested ✕", id="not-interested", compact=True, tooltip=DISMISS_TIP)
            yield Button(
                "Why this? ⓘ", id="why-marketing", compact=True, tooltip="Why am I seeing this?"
            )

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
        # Answers feed the campaign's report: only for a genuine campaign copy.
        self.query_one("#marketing-controls").display = bool(
            is_marketing(message) and campaign_of(message)
        )
        for index in range(MAX_BUTTONS):
            widget = self.query_one(f"#template-button-{index}", Button)
            if index >= len(buttons):
                widget.display = False
                continue
            self._label(widget, buttons[index])
            widget.display = True

    def _label(self, widget: Button, button: RenderedButton) -> None:
        if _is_stop(button) and self.promotions_stopped:
            widget.label = Text(RESUME_PROMOTIONS)
            widget.variant = "success"
            widget.tooltip = Text("Marketing from this business reaches you again")
            return
        widget.label = Text(button_label(button))
        widget.variant = "error" if _is_stop(button) else "default"
        widget.tooltip = Text(_tooltip(button.type, button.url))

    def watch_promotions_stopped(self) -> None:
        template = template_of(self.message) if self.message else None
        for index, button in enumerate(template.buttons if template else []):
            if _is_stop(button):
                self._label(self.query_one(f"#template-button-{index}", Button), button)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        message = self.message
        if message is None:
            return
        if event.button.id in ("interested", "not-interested"):
            answer = "interested" if event.button.id == "interested" else "not_interested"
            self.post_message(MarketingAnswered(message, answer))
            return
        if event.button.id == "why-marketing":
            self.post_message(WhyMarketingAsked(message))
            return
        template = template_of(message)
        if not (template and event.button.id):
            return
        index = int(event.button.id.rsplit("-", 1)[1])
        if index < len(template.buttons):
            self.post_message(TemplateButtonPressed(message, template.buttons[index]))


DISMISS_TIP = (
    "Dismiss it: nothing is deleted; the campaign's anonymous, noised report counts it "
    "(if optional signals are on)"
)
INTERESTED_TIP = (
    "Counted like a click in the campaign's anonymous, noised report (if optional signals "
    "are on); the business is not told who"
)


def _is_stop(button: RenderedButton) -> bool:
    return button.type == "quick_reply" and button.text == STOP_PROMOTIONS


def _tooltip(kind: str, url: str | None) -> str:
    if kind == "url":
        return f"Open {url} (also copied to the clipboard)"
    if kind == "copy_code":
        return "Copy the code to the clipboard"
    return "Send this as a reply"
