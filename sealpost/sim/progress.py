"""Progress on stderr while a simulation runs: one live line in a terminal, plain phase lines
otherwise (logs, pipes, CI). Never on stdout, which carries the summary or the JSON."""

import sys
import time
from typing import TextIO

REFRESH_S = 0.1


class Progress:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.phase_name = ""
        self._fields: dict[str, str] = {}
        self._shown = 0.0
        self._started = time.perf_counter()
        self._width = 0

    def phase(self, name: str) -> None:
        """A new phase: a line of its own when not live."""
        self.phase_name = name
        self._fields = {}
        if not self.enabled:
            return
        if self.live:
            self._draw(force=True)
        else:
            self._print(f"[{self._elapsed()}] {name}")

    def update(self, **fields: object) -> None:
        """Figures of the current phase (shown live; summed up by :meth:`note` otherwise)."""
        self._fields.update({k: _fmt(v) for k, v in fields.items()})
        if self.live:
            self._draw()

    def note(self, text: str) -> None:
        """A line worth keeping in either mode (e.g. the end of a simulated day)."""
        if not self.enabled:
            return
        if self.live:
            self._clear()
        self._print(f"[{self._elapsed()}] {text}")
        if self.live:
            self._draw(force=True)

    def done(self) -> None:
        if self.live:
            self._clear()

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self._started:6.1f} s"

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._shown < REFRESH_S:
            return
        self._shown = now
        parts = [self.phase_name, *(f"{k} {v}" for k, v in self._fields.items())]
        line = f"[{self._elapsed()}] " + " | ".join(p for p in parts if p)
        self.stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self.stream.flush()

    def _clear(self) -> None:
        self.stream.write("\r" + " " * self._width + "\r")
        self._width = 0
        self.stream.flush()

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _fmt(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)
