"""The conversation: a line-API scroll view that renders only the lines on screen.

Messages are read from the store a page at a time (newest first) and laid out into wrapped
lines; ``render_line`` draws just the visible rows, so a chat with ten thousand messages opens
as fast as one with ten. Scrolling to the top loads the previous page.
"""

from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from client.store import LocalStore, StoredMessage
from client.tui.messages import TemplateButtonPressed
from client.tui.text import TimeFormat, local_time, safe
from client.tui.widgets.message_render import (
    GUTTER,
    LineStyles,
    RenderedLine,
    render_message,
    template_of,
)

PAGE = 100  # a few screens of history; older pages load on scrolling up
FIRST_PAGE = 50  # what a chat opens with: more than a tall screen, quick to lay out
CONTEXT = 20  # messages shown above a search hit when a chat opens at it
NOTICE_LINE = -2  # the "message index" of the chat's warning lines: never a selection


class ConversationView(ScrollView, can_focus=True):
    """Messages of one conversation; up/down select a message, its buttons are in the bar."""

    BINDINGS = [
        Binding("up,k", "select(-1)", "Previous", show=False),
        Binding("down,j", "select(1)", "Next", show=False),
        Binding("home", "select_edge(0)", "First", show=False),
        Binding("end", "select_edge(1)", "Last", show=False),
        Binding("pageup", "page_up", show=False),
        Binding("pagedown", "page_down", show=False),
        Binding("x", "app.dismiss_marketing", "Not interested", show=False),
    ]

    COMPONENT_CLASSES = {
        "conversation--sender",
        "conversation--meta",
        "conversation--marketing",
        "conversation--label",
        "conversation--quarantine",
        "conversation--button",
        "conversation--stop-button",
        "conversation--selected",
        "conversation--failed",
    }

    selected: reactive[int] = reactive(-1, init=False)

    class SelectionChanged(Message):
        """The selected message changed (or its content did); the action bar follows it."""

        def __init__(self, message: StoredMessage | None) -> None:
            super().__init__()
            self.message = message

    def __init__(
        self,
        store: LocalStore,
        *,
        time_format: TimeFormat = local_time,
        names: Callable[[str], tuple[str, bool]] | None = None,
        notice: Callable[[str], str | None] | None = None,
        answers: Callable[[str], str | None] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.store = store
        self.time_format = time_format
        self._names = names or (lambda handle: (handle, False))
        # A warning about the whole chat (a key change), drawn under its newest message.
        self._notice = notice or (lambda handle: None)
        # The person's answer to a marketing message (by its id), drawn under it.
        self._answers = answers or (lambda msg_id: None)
        self.peer: str | None = None
        self.messages: list[StoredMessage] = []
        self.has_older = False
        self.has_newer = False  # opened in the middle (at a search hit): more below the window
        self._lines: list[RenderedLine] = []
        self._first_line: list[int] = []  # message index -> its first line
        self._layout_width = -1
        self._gutter_style = Style()

    # --- data ---------------------------------------------------------------------------

    def show(self, peer: str | None) -> None:
        """Open ``peer``'s newest page, scrolled to the end, newest message selected."""
        self.peer = peer
        self.messages = self.store.messages_page(peer, limit=FIRST_PAGE) if peer else []
        self.has_older = len(self.messages) == FIRST_PAGE
        self.has_newer = False
        self.set_reactive(ConversationView.selected, len(self.messages) - 1)
        self._relayout()
        self.scroll_end(animate=False, immediate=True)

    def show_at(self, peer: str, msg_id: str) -> bool:
        """Open ``peer`` at ``msg_id`` (a search hit): a window around it, the hit selected.

        Only a page on either side is read, so a hit deep in a long chat opens as fast as the
        newest page; scrolling or moving past either end of the window reads more.
        """
        target = self.store.message(msg_id)
        if target is None or target.peer != peer:
            return False
        key = (target.sent_at, target.msg_id)
        older = self.store.messages_page(peer, before=key, limit=CONTEXT)
        newer = self.store.messages_after(peer, key, limit=PAGE + 1, inclusive=True)
        self.peer = peer
        self.has_older = len(older) == CONTEXT
        self.has_newer = len(newer) > PAGE
        self.messages = older + newer[:PAGE]
        self.set_reactive(ConversationView.selected, len(older))
        self._relayout()
        self.call_after_refresh(self._scroll_to_selected, True)
        return True

    def load_newer(self) -> int:
        """Append the next page of a window opened in the middle; returns how many were added."""
        if not (self.peer and self.has_newer and self.messages):
            return 0
        last = self.messages[-1]
        newer = self.store.messages_after(self.peer, (last.sent_at, last.msg_id), limit=PAGE + 1)
        self.has_newer = len(newer) > PAGE
        newer = newer[:PAGE]
        if newer:
            self.messages = self.messages + newer
            self._relayout()
        return len(newer)

    def reload(self) -> None:
        """Re-read the loaded range plus anything newer, keeping the scroll position."""
        if self.peer is None:
            return
        if self.has_newer:
            # A window in the middle of the chat: re-read just that window.
            first = self.messages[0]
            fresh = self.store.messages_after(
                self.peer,
                (first.sent_at, first.msg_id),
                limit=len(self.messages) + 1,
                inclusive=True,
            )
            self.has_newer = len(fresh) > len(self.messages)
            self.messages = fresh[: len(self.messages)]
            self._relayout()
            return
        at_end = self.scroll_y >= self.max_scroll_y - 1
        was_last = self.selected >= len(self.messages) - 1
        fresh = self.store.messages_page(self.peer, limit=len(self.messages) + PAGE)
        if self.messages:
            # Keep exactly the older pages already loaded, plus whatever is newer.
            oldest = (self.messages[0].sent_at, self.messages[0].msg_id)
            fresh = [m for m in fresh if (m.sent_at, m.msg_id) >= oldest]
        self.messages = fresh
        if was_last or self.selected >= len(fresh):
            self.set_reactive(ConversationView.selected, len(fresh) - 1)
        self._relayout()
        if at_end:
            self.scroll_end(animate=False, immediate=True)

    def load_older(self) -> int:
        """Prepend the previous page; returns how many messages were added."""
        if not (self.peer and self.has_older and self.messages):
            return 0
        first = self.messages[0]
        older = self.store.messages_page(
            self.peer, before=(first.sent_at, first.msg_id), limit=PAGE
        )
        self.has_older = len(older) == PAGE
        if not older:
            return 0
        lines_before = len(self._lines)
        self.messages = older + self.messages
        self.set_reactive(ConversationView.selected, self.selected + len(older))
        self._relayout()
        # Keep the same message under the eye after lines were added above it.
        self.scroll_to(
            y=self.scroll_y + len(self._lines) - lines_before, animate=False, immediate=True
        )
        return len(older)

    @property
    def selected_message(self) -> StoredMessage | None:
        if 0 <= self.selected < len(self.messages):
            return self.messages[self.selected]
        return None

    # --- layout -------------------------------------------------------------------------

    def _styles(self) -> LineStyles:
        get = self.get_component_rich_style
        return LineStyles(
            sender=get("conversation--sender"),
            meta=get("conversation--meta"),
            marketing=get("conversation--marketing"),
            label=get("conversation--label"),
            quarantine=get("conversation--quarantine"),
            button=get("conversation--button"),
            stop_button=get("conversation--stop-button"),
            selected=get("conversation--selected"),
            failed=get("conversation--failed"),
        )

    def _relayout(self) -> None:
        width = self.scrollable_content_region.width or self.size.width or 80
        self._layout_width = width
        styles = self._styles()
        console = self.app.console
        lines: list[RenderedLine] = []
        first: list[int] = []
        for index, message in enumerate(self.messages):
            name, verified = self._names(message.sender)
            first.append(len(lines))
            lines += render_message(
                message,
                index,
                width,
                console=console,
                styles=styles,
                time_format=self.time_format,
                sender_name=name,
                verified=verified,
                answer=self._answers(message.msg_id),
            )
        notice = self._notice(self.peer) if self.peer and not self.has_newer else None
        if notice:
            # After the newest message, where the chat opens and new messages appear: the
            # person sees it before reading or writing anything more. Not a message, so not
            # selectable; clicking it opens the safety number.
            text = Text(safe(notice), styles.quarantine, end="")
            for row in text.wrap(console, max(width - GUTTER, 8), overflow="fold"):
                lines.append(RenderedLine(row, NOTICE_LINE))
        self._lines, self._first_line = lines, first
        self._gutter_style = styles.selected
        self.virtual_size = Size(width, len(lines))
        self.refresh()
        self.post_message(self.SelectionChanged(self.selected_message))

    def on_resize(self, _: events.Resize) -> None:
        if self.scrollable_content_region.width != self._layout_width:
            at_end = self.scroll_y >= self.max_scroll_y - 1
            self._relayout()
            if at_end:
                self.scroll_end(animate=False, immediate=True)

    def notify_style_update(self) -> None:
        # The theme changed: styles are baked into the laid-out lines, so lay out again.
        super().notify_style_update()
        if self.is_mounted and self._layout_width >= 0:
            self._relayout()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, base)
        line = self._lines[index]
        selected = line.message == self.selected and line.text.cell_len > 0
        gutter = Text("▌ ", style=self._gutter_style) if selected else Text("  ")
        text = Text.assemble(gutter, line.text, end="")
        segments = list(text.render(self.app.console, end=""))
        strip = Strip(segments, text.cell_len).crop_extend(scroll_x, scroll_x + width, None)
        return strip.apply_style(base)

    # --- selection and interaction -----------------------------------------------------

    def watch_selected(self, old: int, new: int) -> None:
        self.refresh()
        self.post_message(self.SelectionChanged(self.selected_message))
        self._scroll_to_selected()

    def _scroll_to_selected(self, top: bool = False) -> None:
        """Bring the selected message into view (``top``: at the top of the view)."""
        new = self.selected
        if 0 <= new < len(self._first_line):
            start = self._first_line[new]
            end = self._first_line[new + 1] if new + 1 < len(self._first_line) else len(self._lines)
            height = self.scrollable_content_region.height
            if top or start < self.scroll_y:
                self.scroll_to(y=start, animate=False, immediate=True)
            elif end > self.scroll_y + height:
                self.scroll_to(y=max(end - height, 0), animate=False, immediate=True)

    def action_select(self, step: int) -> None:
        if not self.messages:
            return
        target = self.selected + step
        if target < 0 and self.load_older():
            target = self.selected + step
        if target >= len(self.messages) and self.load_newer():
            target = self.selected + step
        self.selected = max(0, min(target, len(self.messages) - 1))

    def action_select_edge(self, end: int) -> None:
        if end and self.has_newer:
            self.show(self.peer)  # the newest page, as when the chat is opened
        elif self.messages:
            self.selected = len(self.messages) - 1 if end else 0

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value <= 0 and old_value > 0 and self.has_older:
            self.call_later(self.load_older)
        elif self.has_newer and new_value >= self.max_scroll_y and new_value > old_value:
            self.call_later(self.load_newer)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = self.scroll_offset.y + offset.y
        if not 0 <= row < len(self._lines):
            return
        line = self._lines[row]
        if line.message == NOTICE_LINE:
            self.call_later(self.run_action, "app.safety_number")
            return
        self.selected = line.message
        x = self.scroll_offset.x + offset.x
        for hit in line.hits:
            if hit.x0 <= x < hit.x1:
                message = self.messages[line.message]
                template = template_of(message)
                if template:
                    self.post_message(TemplateButtonPressed(message, template.buttons[hit.button]))
                return

    def line_texts(self) -> list[str]:
        """Every laid-out line as plain text (for tests and screen readers)."""
        return [line.text.plain for line in self._lines]
