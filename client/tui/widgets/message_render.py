"""Turning stored messages into wrapped lines of plain, styled text (no markup is parsed).

Pure functions of the message, the width and the styles, so a conversation view can lay out
only what it shows and tests can check the output without a terminal.
"""

from dataclasses import dataclass, field

from rich.console import Console
from rich.style import Style
from rich.text import Text

from client.store import HIDDEN_BY_CHOICE, StoredMessage
from client.tui.text import TimeFormat, safe
from shared.templates import STOP_PROMOTIONS, RenderedButton, RenderedTemplate

GUTTER = 2
BUTTON_ICONS = {"url": "↗", "copy_code": "⧉", "quick_reply": "↩"}
# The trace a person's answer to a marketing message leaves under it (client/tui/state.py).
ANSWER_TEXT = {
    "interested": "✓ Interested (you said so)",
    "not_interested": "✕ Not interested (you said so)",
}
STATUS_TEXT = {
    "sent": "✓ sent",
    "queued": "◷ queued, goes out when the relay is back",
}


@dataclass(frozen=True)
class LineStyles:
    """Rich styles for each part, resolved from the widget's component classes."""

    sender: Style = field(default_factory=Style)
    meta: Style = field(default_factory=Style)
    marketing: Style = field(default_factory=Style)
    label: Style = field(default_factory=Style)
    quarantine: Style = field(default_factory=Style)
    button: Style = field(default_factory=Style)
    stop_button: Style = field(default_factory=Style)
    selected: Style = field(default_factory=Style)
    failed: Style = field(default_factory=Style)


@dataclass(frozen=True)
class ButtonHit:
    """Where a template button sits on its line (cells ``x0`` to ``x1``, end exclusive)."""

    x0: int
    x1: int
    button: int


@dataclass
class RenderedLine:
    text: Text
    message: int  # index of the message in the view
    hits: tuple[ButtonHit, ...] = ()


def template_of(message: StoredMessage) -> RenderedTemplate | None:
    """The rendered template behind a verified template message, for its buttons."""
    if message.status != "verified" or not message.rendered_json:
        return None
    try:
        return RenderedTemplate.model_validate_json(message.rendered_json)
    except ValueError:
        return None


def is_marketing(message: StoredMessage) -> bool:
    return (message.label or "").startswith("Marketing")


def button_label(button: RenderedButton) -> str:
    return f"{safe(button.text, keep_newlines=False)} {BUTTON_ICONS.get(button.type, '')}".strip()


def render_message(
    message: StoredMessage,
    index: int,
    width: int,
    *,
    console: Console,
    styles: LineStyles,
    time_format: TimeFormat,
    sender_name: str,
    verified: bool,
    answer: str | None = None,
) -> list[RenderedLine]:
    """The lines of one message at ``width`` cells, ending with a blank separator line.

    ``answer``: what the person said of it ("interested" / "not_interested"), drawn under it.

    Lines leave out the ``GUTTER`` cells on the left, where the view marks the selection.
    """
    inner = max(width - GUTTER, 8)
    lines: list[RenderedLine] = []

    def add(text: Text, hits: tuple[ButtonHit, ...] = ()) -> None:
        lines.append(RenderedLine(text, index, hits))

    header = Text(end="")
    if message.direction == "out":
        header.append("You", styles.sender)
        header.append(f" · {time_format(message.sent_at)} · ", styles.meta)
        if message.status == "failed":
            header.append(f"✗ failed: {safe(message.quarantine_detail)}", styles.failed)
        else:
            header.append(STATUS_TEXT.get(message.status, message.status), styles.meta)
    else:
        header.append(safe(sender_name, keep_newlines=False), styles.sender)
        if verified:
            header.append(" ✔", styles.sender)
        header.append(f" · {time_format(message.sent_at)}", styles.meta)
        if message.quarantine_reason == HIDDEN_BY_CHOICE:
            header.append("  ", styles.meta)
            header.append(" hidden by your choices ", styles.label)
        elif message.status == "quarantined":
            header.append("  ", styles.meta)
            header.append(" ⚠ could not verify ", styles.quarantine)
        elif message.label:
            header.append("  ")
            tag = styles.marketing if is_marketing(message) else styles.label
            header.append(f" {safe(message.label, keep_newlines=False)} ", tag)
    for part in header.wrap(console, inner, overflow="fold"):
        add(part)

    if message.quarantine_reason == HIDDEN_BY_CHOICE:
        body = Text(safe(message.quarantine_detail or "hidden by your choices"), styles.meta)
        body.append(
            "\nYour device applied your own choices to it; its text is not shown.", styles.meta
        )
    elif message.status == "quarantined":
        body = Text(f"could not verify: {safe(message.quarantine_reason)}", styles.quarantine)
        if message.quarantine_detail:
            body.append(f"\n{safe(message.quarantine_detail)}", styles.meta)
        body.append(
            "\nThe text is kept aside and not shown, as it may not be genuine.", styles.meta
        )
    else:
        body = Text(safe(message.text))
    for part in body.wrap(console, inner, overflow="fold"):
        add(part)

    template = template_of(message)
    if template and template.buttons:
        row, hits, x = Text(end=""), [], GUTTER
        for n, button in enumerate(template.buttons):
            label = f"[ {button_label(button)} ]"
            cells = Text(label).cell_len
            if x > GUTTER and x + cells > width:
                add(row, tuple(hits))
                row, hits, x = Text(end=""), [], GUTTER
            stop = button.type == "quick_reply" and button.text == STOP_PROMOTIONS
            row.append(label, styles.stop_button if stop else styles.button)
            hits.append(ButtonHit(x, x + cells, n))
            row.append(" ")
            x += cells + 1
        add(row, tuple(hits))
    if answer in ANSWER_TEXT:
        for part in Text(ANSWER_TEXT[answer], styles.label, end="").wrap(
            console, inner, overflow="fold"
        ):
            add(part)
    lines.append(RenderedLine(Text(end=""), index))
    return lines
