"""A small horizontal bar chart: one labelled bar per figure, scaled to the widest value.

A figure that is not known is ``None`` and drawn as a note, never as zero: a missing figure
and a zero are different things. Values below zero (a noisy estimate can dip there) are
shown as they are, with no bar.
"""

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

BAR = "█"
PARTS = " ▏▎▍▌▋▊▉"  # eighths of a cell, for bars that are not a whole number of cells


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    note: str = ""  # shown after the value (e.g. a confidence interval)


def bar_text(value: float, top: float, width: int) -> str:
    """``value`` as a bar of at most ``width`` cells when ``top`` fills them all."""
    if top <= 0 or value <= 0 or width <= 0:
        return ""
    eighths = round(min(value / top, 1.0) * width * 8)
    return BAR * (eighths // 8) + (PARTS[eighths % 8] if eighths % 8 else "")


class BarChart(Widget):
    """``chart.bars = [...]`` (or :meth:`set_bars`) redraws; values are shown beside bars."""

    DEFAULT_CSS = """
    BarChart {
        height: auto;
    }
    """

    COMPONENT_CLASSES = {"bar-chart--bar", "bar-chart--label", "bar-chart--hidden"}

    def __init__(
        self, title: str = "", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.bars: list[Bar] = []
        self.empty_text = "nothing to show yet"

    def set_bars(self, bars: list[Bar], empty_text: str | None = None) -> None:
        self.bars = bars
        if empty_text is not None:
            self.empty_text = empty_text
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return (1 if self.title else 0) + max(len(self.bars), 1)

    def render(self) -> Text:
        bar_style = self.get_component_rich_style("bar-chart--bar")
        label_style = self.get_component_rich_style("bar-chart--label")
        hidden_style = self.get_component_rich_style("bar-chart--hidden")
        out = Text(end="", no_wrap=True, overflow="ellipsis")
        if self.title:
            out.append(self.title, "bold")
            out.append("\n")
        if not self.bars:
            out.append(self.empty_text, hidden_style)
            return out
        label_width = max(len(b.label) for b in self.bars)
        values = [f"{b.value:,.0f}" if b.value is not None else "" for b in self.bars]
        value_width = max(len(v) for v in values)
        notes = max((len(b.note) + 1 for b in self.bars if b.value is not None), default=0)
        room = max(self.size.width - label_width - value_width - notes - 3, 4)
        top = max((b.value for b in self.bars if b.value is not None), default=0.0)
        for n, (bar, value) in enumerate(zip(self.bars, values, strict=True)):
            if n:
                out.append("\n")
            out.append(bar.label.ljust(label_width), label_style)
            out.append(" ")
            if bar.value is None:
                out.append("hidden: " + (bar.note or "too few to show"), hidden_style)
                continue
            out.append(value.rjust(value_width))
            out.append(" ")
            out.append(bar_text(max(bar.value, 0.0), top, room), bar_style)
            if bar.note:
                out.append(f" {bar.note}", hidden_style)
        return out
