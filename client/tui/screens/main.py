"""The main screen: chat list on the left, the open conversation on the right."""

from dataclasses import replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label

from client.store import HIDDEN_BY_CHOICE, StoredMessage
from client.tui.messages import ConversationSelected
from client.tui.signals import campaign_of, shown_campaigns
from client.tui.state import Connection
from client.tui.text import safe
from client.tui.widgets.action_bar import ActionBar
from client.tui.widgets.chat_list import ChatList, ChatRow
from client.tui.widgets.composer import Composer
from client.tui.widgets.conversation import ConversationView
from client.tui.widgets.conversation_header import ConversationHeader
from client.tui.widgets.message_render import is_marketing
from client.tui.widgets.request_bar import RequestBar
from shared.display_names import name_or_handle

if TYPE_CHECKING:
    from client.tui.app import SealpostApp


class MainScreen(Screen[None]):
    HELP_TITLE = "Chats"
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
                    app.store,
                    time_format=app.time_format,
                    names=app.name_of,
                    notice=app.key_notice,
                    answers=lambda msg_id: app.state.answers.get(msg_id),
                    id="conversation",
                )
                yield RequestBar(id="request-bar")
                yield ActionBar(id="action-bar")
                yield Composer(cursor_blink=app.cursor_blink, id="composer")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ConversationHeader).clear()
        self.query_one(ActionBar).display = False
        self.query_one(RequestBar).display = False
        # Drawn now from the app's state, then on every change (init: called at once).
        self.watch(self.app, "connection", self._show_connection)
        self.refresh_chats()
        # The newest chat, never a message request: those wait for the person to open them.
        rows = [r for r in self.query_one(ChatList).rows if not r.request]
        if rows:
            self.open_conversation(rows[0].peer)
        self.query_one("#chat-options").focus()

    def on_screen_resume(self) -> None:
        # Back from a modal or another screen: what arrived meanwhile in the open chat was
        # counted unread (nobody saw it) and is now in view.
        view = self.query_one(ConversationView)
        if view.peer is not None:
            self.mark_read(view.peer)
            self.app.record_signal(shown_campaigns(view.messages), "read")

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
            if message is None and not convo.last_at:
                continue  # accepted ahead of any message: nothing to show yet
            business = app.is_business(convo.peer)
            # Checked again: a name stored by an older version may break today's rules.
            name = name_or_handle(convo.display_name, convo.peer)
            lookalike = app.lookalike_of(convo.peer, name)
            rows.append(
                ChatRow(
                    peer=convo.peer,
                    name=name,
                    business=business,
                    verified=convo.verified,
                    unread=convo.unread,
                    preview=_preview(message),
                    marketing=bool(message and is_marketing(message)),
                    blocked=bool(prefs and convo.peer in prefs.blocked),
                    promotions_off=bool(prefs and convo.peer in prefs.promotions_stopped),
                    notify=app.state.notify_mode(convo.peer),
                    looks_like=lookalike.warning() if lookalike else "",
                    request=not convo.accepted,
                )
            )
        return rows

    def refresh_chats(self) -> None:
        rows = self.chat_rows()
        self.query_one(ChatList).set_rows(rows)
        self._count(rows)
        self.refresh_header()

    def _count(self, rows: list[ChatRow]) -> None:
        self.app.update_sub_title(
            sum(r.unread for r in rows if not r.request), sum(r.request for r in rows)
        )

    def refresh_header(self) -> None:
        peer = self.current_peer
        if peer is None:
            return
        name, verified = self.app.name_of(peer)
        lookalike = self.app.lookalike_of(peer, name)
        prefs = self.app.prefs
        self.query_one(ConversationHeader).show(
            name=name,
            handle=peer,
            business=self.app.is_business(peer),
            verified=verified,
            blocked=bool(prefs and peer in prefs.blocked),
            promotions_off=bool(prefs and peer in prefs.promotions_stopped),
            notify=self.app.state.notify_mode(peer),
            key_changed=self.app.key_changed(peer),
            safety_verified=self.app.safety_verified(peer),
            looks_like=lookalike.warning() if lookalike else "",
        )
        self.query_one(RequestBar).show(peer if self.app.is_request(peer) else None, name)
        self.query_one(ActionBar).promotions_stopped = bool(
            prefs and peer in prefs.promotions_stopped
        )
        self.app.refresh_bindings()  # "Accept request" shows in the footer only for requests

    def open_conversation(self, peer: str, at: str | None = None) -> None:
        """Show ``peer``'s chat: its newest messages, or around message ``at`` (search)."""
        chat_list = self.query_one(ChatList)
        chat_list.current = peer
        view = self.query_one(ConversationView)
        if at is None or not view.show_at(peer, at):
            view.show(peer)
        if at is not None:
            view.focus()
        self.query_one(Composer).peer = peer
        self.mark_read(peer)
        self.app.record_signal(shown_campaigns(view.messages), "read")

    def mark_read(self, peer: str) -> None:
        """Clear ``peer``'s unread count; only its own row is redrawn (switching stays fast)."""
        chat_list = self.query_one(ChatList)
        row = next((r for r in chat_list.rows if r.peer == peer), None)
        if row is None:
            self.app.store.mark_read(peer)
            self.refresh_chats()
            return
        if row.unread:
            self.app.store.mark_read(peer)
            chat_list.update_row(replace(row, unread=0))
            self._count(chat_list.rows)
        chat_list.show_current()
        self.refresh_header()

    def message_arrived(self, message: StoredMessage) -> None:
        if self.current_peer is None and not self.app.is_request(message.peer):
            self.open_conversation(message.peer)  # the first chat ever: show it
            return
        if message.peer == self.current_peer:
            self.query_one(ConversationView).reload()
            if self.app.screen is self:
                self.app.store.mark_read(message.peer)
                self.app.record_signal([campaign_of(message)], "read")
        self.refresh_chats()

    def conversation_changed(self, peer: str) -> None:
        if peer == self.current_peer:
            self.query_one(ConversationView).reload()
        self.refresh_chats()

    def _show_connection(self, old: Connection, new: Connection) -> None:
        try:
            label = self.query_one("#connection", Label)
        except NoMatches:  # being torn down as the app exits
            return
        if new.online:
            label.update(Text("● online", "bold green"))
            label.tooltip = None
        else:
            label.update(Text(f"○ {new.text}", "bold red", end=""))
            label.tooltip = Text(safe(new.detail)) if new.detail else None  # the relay's words
        label.set_class(not new.online, "-offline")
        current = self.current_peer
        if new.online and not old.online and current:
            # The reconnect flushed the outbox: statuses may have changed from queued to sent.
            self.conversation_changed(current)

    # --- UI events ----------------------------------------------------------------------

    def on_conversation_selected(self, event: ConversationSelected) -> None:
        event.stop()
        self.open_conversation(event.peer)

    def on_conversation_view_selection_changed(
        self, event: ConversationView.SelectionChanged
    ) -> None:
        event.stop()
        self.query_one(ActionBar).show(event.message)

    @on(Button.Pressed, "#privacy-marker")
    def open_privacy(self) -> None:
        self.app.action_privacy()


def _preview(message: StoredMessage | None) -> str:
    if message is None:
        return ""
    if message.quarantine_reason == "key_changed":
        return "⚠ safety number changed"
    if message.quarantine_reason == HIDDEN_BY_CHOICE:
        return "hidden by your choices"
    if message.status == "quarantined":
        return "⚠ could not verify"
    prefix = "You: " if message.direction == "out" else ""
    return prefix + (message.text or "")
