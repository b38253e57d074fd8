"""The main screen: chat list on the left, the open conversation on the right."""

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label

from client.store import StoredMessage
from client.tui.messages import ConversationSelected
from client.tui.widgets.action_bar import ActionBar
from client.tui.widgets.chat_list import ChatList, ChatRow
from client.tui.widgets.composer import Composer
from client.tui.widgets.conversation import ConversationView
from client.tui.widgets.conversation_header import ConversationHeader
from client.tui.widgets.message_render import is_marketing

if TYPE_CHECKING:
    from client.tui.app import SealpostApp


class MainScreen(Screen[None]):
    app: "SealpostApp"

    def compose(self) -> ComposeResult:
        app = self.app
        yield Header()
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield ChatList(id="chat-list")
                yield Label("", id="connection")
            with Vertical(id="chat"):
                yield ConversationHeader(id="conversation-header")
                yield ConversationView(
                    app.store, time_format=app.time_format, names=app.name_of, id="conversation"
                )
                yield ActionBar(id="action-bar")
                yield Composer(cursor_blink=app.cursor_blink, id="composer")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ConversationHeader).clear()
        self.query_one(ActionBar).display = False
        self.show_connection(False, "connecting…")
        self.refresh_chats()
        rows = self.query_one(ChatList).rows
        if rows:
            self.open_conversation(rows[0].peer)
        self.query_one("#chat-options").focus()

    # --- state from the app -------------------------------------------------------------

    @property
    def current_peer(self) -> str | None:
        return self.query_one(ConversationView).peer

    def chat_rows(self) -> list[ChatRow]:
        app = self.app
        prefs = app.prefs
        rows = []
        latest = app.store.last_messages()
        for convo in app.store.conversations():
            message = latest.get(convo.peer)
            business = app.is_business(convo.peer)
            rows.append(
                ChatRow(
                    peer=convo.peer,
                    name=convo.display_name,
                    business=business,
                    verified=convo.verified,
                    unread=convo.unread,
                    preview=_preview(message),
                    marketing=bool(message and is_marketing(message)),
                    blocked=bool(prefs and convo.peer in prefs.blocked),
                    promotions_off=bool(prefs and convo.peer in prefs.promotions_stopped),
                )
            )
        return rows

    def refresh_chats(self) -> None:
        self.query_one(ChatList).set_rows(self.chat_rows())
        self.refresh_header()

    def refresh_header(self) -> None:
        peer = self.current_peer
        if peer is None:
            return
        name, verified = self.app.name_of(peer)
        prefs = self.app.prefs
        self.query_one(ConversationHeader).show(
            name=name,
            handle=peer,
            business=self.app.is_business(peer),
            verified=verified,
            blocked=bool(prefs and peer in prefs.blocked),
            promotions_off=bool(prefs and peer in prefs.promotions_stopped),
        )

    def open_conversation(self, peer: str) -> None:
        chat_list = self.query_one(ChatList)
        chat_list.current = peer
        self.query_one(ConversationView).show(peer)
        self.query_one(Composer).peer = peer
        self.app.store.mark_read(peer)
        self.refresh_chats()
        self.app.maybe_first_contact(peer)

    def message_arrived(self, message: StoredMessage) -> None:
        if self.current_peer is None:
            self.open_conversation(message.peer)  # the first chat ever: show it
            return
        if message.peer == self.current_peer:
            self.query_one(ConversationView).reload()
            if self.app.screen is self:
                self.app.store.mark_read(message.peer)
        self.refresh_chats()

    def conversation_changed(self, peer: str) -> None:
        if peer == self.current_peer:
            self.query_one(ConversationView).reload()
        self.refresh_chats()

    def show_connection(self, online: bool, detail: str = "") -> None:
        label = self.query_one("#connection", Label)
        if online:
            label.update(Text("● online", "bold green"))
        else:
            text = Text("○ offline, retrying", "bold red", end="")
            label.tooltip = Text(detail) if detail else None
            label.update(text)
        label.set_class(not online, "-offline")

    # --- UI events ----------------------------------------------------------------------

    def on_conversation_selected(self, event: ConversationSelected) -> None:
        event.stop()
        self.open_conversation(event.peer)

    async def on_conversation_view_selection_changed(
        self, event: ConversationView.SelectionChanged
    ) -> None:
        event.stop()
        await self.query_one(ActionBar).show_for(event.message)

    @on(Button.Pressed, "#privacy-marker")
    def open_privacy(self) -> None:
        self.app.action_privacy()


def _preview(message: StoredMessage | None) -> str:
    if message is None:
        return ""
    if message.status == "quarantined":
        return "⚠ could not verify"
    prefix = "You: " if message.direction == "out" else ""
    return prefix + (message.text or "")
