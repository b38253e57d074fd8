"""What the client core reports to whoever drives it (CLI, TUI, simulator)."""

from dataclasses import dataclass

from client.store import StoredMessage


@dataclass(frozen=True)
class MessageStored:
    message: StoredMessage


@dataclass(frozen=True)
class ConnectionChanged:
    online: bool
    detail: str = ""


ClientEvent = MessageStored | ConnectionChanged
