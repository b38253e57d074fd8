"""What the TUI holds beside the store: the connection as the app last heard it
(:class:`Connection`, never saved), and what it remembers on this device,
``<profile>/tui.json`` (:class:`TuiState`).

Settings (bell, theme, keymap, notifications per conversation) and reports recorded locally
until the moderation channel exists. Nothing here is sent anywhere.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

NotifyMode = Literal["toast", "bell", "off"]
NOTIFY_MODES: tuple[NotifyMode, ...] = get_args(NotifyMode)
DEFAULT_NOTIFY: NotifyMode = "toast"
ConnectionPhase = Literal["connecting", "online", "offline"]
# What the person said of a marketing message with the chat's own buttons.
Answer = Literal["interested", "not_interested"]


@dataclass(frozen=True)
class Connection:
    """The push stream's state: ``online`` from the relay's ``event: ready`` until it drops.

    The app holds one (a reactive) and screens watch it, so a screen mounted at any moment
    draws the state as it is, rather than waiting to be told of the next change.
    """

    phase: ConnectionPhase = "connecting"
    detail: str = ""  # why it is offline, in the relay's or the client's words

    @property
    def online(self) -> bool:
        return self.phase == "online"

    @property
    def text(self) -> str:
        """As the header and the sidebar say it."""
        return {"connecting": "connecting…", "online": "online"}.get(
            self.phase, "offline, retrying"
        )


class LocalReport(BaseModel):
    business: str
    at: int
    message_ids: list[str]
    texts: list[str]


class TuiState(BaseModel):
    bell: bool = False
    theme: str = "textual-dark"
    keymap: dict[str, str] = Field(
        default_factory=dict, description="binding id -> keys, e.g. {'sealpost.help': 'f1,?'}"
    )
    reports: list[LocalReport] = Field(default_factory=list)
    notify: dict[str, NotifyMode] = Field(
        default_factory=dict,
        description="conversation -> toast | bell | off; a conversation not listed gets a toast",
    )
    answers: dict[str, Answer] = Field(
        default_factory=dict,
        description="marketing message id -> the person's answer, shown under the message",
    )

    def notify_mode(self, peer: str) -> NotifyMode:
        return self.notify.get(peer, DEFAULT_NOTIFY)

    def set_notify_mode(self, peer: str, mode: NotifyMode) -> None:
        if mode == DEFAULT_NOTIFY:
            self.notify.pop(peer, None)
        else:
            self.notify[peer] = mode

    @classmethod
    def load(cls, path: Path) -> "TuiState":
        try:
            return cls.model_validate_json(path.read_text())
        except FileNotFoundError:
            return cls()
        except ValueError:
            # A damaged file must not keep the app from starting; keep it aside for inspection.
            os.replace(path, path.with_suffix(".damaged"))
            return cls()

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        os.replace(tmp, path)

    def record_report(self, business: str, messages: list[Any]) -> LocalReport:
        report = LocalReport(
            business=business,
            at=int(time.time() * 1000),
            message_ids=[m.msg_id for m in messages],
            texts=[m.text or "" for m in messages],
        )
        self.reports.append(report)
        return report
