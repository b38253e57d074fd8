"""SealpostApp: the person-side terminal client on top of the headless client core.

All network I/O runs in workers: the push stream (``Messenger.listen``, which reconnects on its
own) and every request the person triggers. Client events become Textual messages.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Literal, TypeVar

from sqlmodel import select
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen

from client.events import ClientEvent, ConnectionChanged, MessageStored
from client.lookalikes import Lookalike, LookalikeIndex
from client.messenger import KeyChangedError, Messenger
from client.profile import load_profile
from client.relay_api import RelayError, RelayUnavailable
from client.settings import ClientSettings
from client.signals import KeyCheckFailed
from client.store import HIDDEN_BY_CHOICE, Contact, LocalStore, StoredMessage
from client.tui.messages import (
    ConnectionStateChanged,
    MarketingAnswered,
    MessageArrived,
    ReplySubmitted,
    RequestAnswered,
    TemplateButtonPressed,
    WhyMarketingAsked,
)
from client.tui.screens.business import BusinessToolsScreen
from client.tui.screens.confirm_block import ConfirmBlockModal
from client.tui.screens.help import HelpScreen
from client.tui.screens.ledger import LedgerScreen
from client.tui.screens.main import MainScreen
from client.tui.screens.privacy import PrivacyExplainer, budget_line
from client.tui.screens.quick_reply import QuickReplyModal
from client.tui.screens.report import REPORT_LIMIT, ReportModal
from client.tui.screens.safety_number import SafetyChoice, SafetyNumberModal, SafetyView
from client.tui.screens.search import SearchHit, SearchScreen
from client.tui.screens.settings import LEVELS, SettingsScreen
from client.tui.screens.why_marketing import WhyMarketing, WhyMarketingScreen
from client.tui.signals import campaign_of
from client.tui.state import NOTIFY_MODES, Answer, Connection, NotifyMode, TuiState
from client.tui.text import TimeFormat, local_time, one_line, safe
from client.tui.widgets.composer import Composer
from client.tui.widgets.conversation import ConversationView
from client.tui.widgets.message_render import is_marketing
from shared.api import Preferences, SetLevel
from shared.display_names import name_or_handle
from shared.seal import PayloadTooLarge
from shared.signals import Event
from shared.templates import STOP_PROMOTIONS, RenderedButton

T = TypeVar("T")
# Actions on the open conversation: kept out of the business tools' footer.
CHAT_ACTIONS = {
    "filter",
    "cycle_notify",
    "block",
    "report",
    "accept_request",
    "toggle_promotions",
    "dismiss_marketing",
    "safety_number",
}
SIGNAL_FLUSH_S = 60.0  # how often due signal reports are looked for (each has its own moment)
THEMES = ("textual-dark", "textual-light")
NOTIFY_TEXT: dict[NotifyMode, str] = {
    "toast": "toast",
    "bell": "toast and terminal bell",
    "off": "off (the unread count still shows)",
}


class SealpostApp(App[None]):
    """``SealpostApp(home, profile)``; the profile must exist (see ``sealpost account``)."""

    CSS_PATH = "sealpost.tcss"
    TITLE = "Sealpost"
    ENABLE_COMMAND_PALETTE = True
    # Screens narrower than 100 cells get the class "-narrow" (sealpost.tcss): a slimmer
    # chat list, so the chat and its buttons keep their room at 80x24.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    # Binding ids let a keymap in the profile's tui.json rebind any of these. Those with
    # show=False still work and are in the help (?) and the command palette: the footer
    # keeps to what fits, the open chat's actions first.
    BINDINGS = [
        Binding("f1,question_mark", "help", "Help", id="sealpost.help"),
        Binding("f2", "settings", "Settings", id="sealpost.settings"),
        Binding("f3", "privacy", "What's shared", id="sealpost.privacy"),
        Binding("f4", "search", "Search", id="sealpost.search"),
        Binding("f5", "ledger", "Ledger", id="sealpost.ledger"),
        Binding("ctrl+f", "filter", "Filter", id="sealpost.filter", show=False),
        Binding("ctrl+n", "cycle_notify", "Notify", id="sealpost.notify", show=False),
        Binding("ctrl+b", "block", "Block", id="sealpost.block"),
        Binding("ctrl+r", "report", "Report", id="sealpost.report"),
        Binding("ctrl+y", "accept_request", "Accept request", id="sealpost.accept"),
        Binding("ctrl+o", "toggle_promotions", "Promos on/off", id="sealpost.promotions"),
        Binding("f6", "dismiss_marketing", "Not interested", id="sealpost.dismiss"),
        Binding("f7", "business_tools", "Business tools", id="sealpost.business"),
        Binding("f8", "safety_number", "Safety number", id="sealpost.safety", show=False),
        Binding("ctrl+t", "toggle_theme", "Theme", id="sealpost.theme", show=False),
        Binding("ctrl+q", "quit", "Quit", id="sealpost.quit", priority=True),
    ]

    # The push stream as last heard (see on_connection_state_changed); screens watch it.
    connection: reactive[Connection] = reactive(Connection(), init=False)

    def __init__(
        self,
        home: Path,
        profile: str,
        *,
        time_format: TimeFormat = local_time,
        cursor_blink: bool = True,
        relay_url: str | None = None,
        signal_flush_s: float = SIGNAL_FLUSH_S,
    ) -> None:
        super().__init__()
        # Opened here so a missing profile fails before the terminal switches to the app.
        loaded = load_profile(home, profile)
        if relay_url:
            # For this run only: the profile on disk keeps its own relay.
            loaded.info = loaded.info.model_copy(update={"relay_url": relay_url})
        self.messenger = Messenger(loaded, ClientSettings(home=home))
        self.store: LocalStore = self.messenger.store
        self.state_path = self.messenger.profile.dir / "tui.json"
        self.state = TuiState.load(self.state_path)
        self.time_format = time_format
        self.cursor_blink = cursor_blink
        self.signal_flush_s = signal_flush_s
        self._flushing_signals = False
        self.prefs: Preferences | None = None
        self._stop = asyncio.Event()
        self._contacts: dict[str, Contact | None] = {}
        self._lookalikes: LookalikeIndex | None = None  # built on first use, see lookalike_of
        self.unread_total = 0
        self.requests_total = 0
        self.update_sub_title()

    # --- lifecycle ------------------------------------------------------------------------

    async def on_mount(self) -> None:
        if self.state.theme in THEMES:
            self.theme = self.state.theme
        if self.state.keymap:
            self.set_keymap(self.state.keymap)
        # Mounted before the stream starts: what the stream brings always finds the chats.
        await self.push_screen(MainScreen())
        self.listen()
        self.fetch_preferences()
        self.set_interval(self.signal_flush_s, self.flush_signals)

    async def on_unmount(self) -> None:
        self._stop.set()
        await self.messenger.aclose()

    @property
    def online(self) -> bool:
        return self.connection.online

    @property
    def is_business_profile(self) -> bool:
        return self.messenger.profile.info.kind == "business"

    @property
    def has_main(self) -> bool:
        return any(isinstance(screen, MainScreen) for screen in self.screen_stack)

    @property
    def main(self) -> MainScreen:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("main screen not mounted")

    # --- directory helpers ----------------------------------------------------------------

    def contact(self, handle: str) -> Contact | None:
        """The pinned directory entry of ``handle``; cached, and forgotten whenever it may
        have changed (a key change arrived, the person accepted one or verified it)."""
        if handle not in self._contacts:
            # A miss is cached too, and forgotten when a message from the handle arrives
            # (that is when the client core pins a new contact).
            self._contacts[handle] = self.store.contact(handle)
        return self._contacts[handle]

    def name_of(self, handle: str) -> tuple[str, bool]:
        """Display name and verified mark of ``handle`` as pinned on this device."""
        contact = self.contact(handle)
        if contact:
            # Checked again here: a name pinned by an older version may break today's rules.
            return name_or_handle(contact.display_name, handle), contact.verified
        return handle, False

    def lookalike_of(self, handle: str, name: str | None = None) -> Lookalike | None:
        """The verified business contact whose name ``handle``'s name (or ``name``) looks
        like, when ``handle`` is another account: "ACME Shoes" in Cyrillic beside the verified
        ACME Shoes (@acme)."""
        if self._lookalikes is None:
            # Every verified business pinned on this device; rebuilt when a contact is pinned.
            with self.store.session() as s:
                found = s.exec(
                    select(Contact).where(Contact.kind == "business", Contact.verified)
                ).all()
            self._lookalikes = LookalikeIndex(
                (c.handle, name_or_handle(c.display_name, c.handle)) for c in found
            )
        return self._lookalikes.match(handle, name if name is not None else self.name_of(handle)[0])

    def is_business(self, handle: str) -> bool:
        contact = self.contact(handle)
        return bool(contact and contact.kind == "business")

    def key_changed(self, handle: str) -> bool:
        """``handle``'s key changed and the person has not accepted the new one."""
        contact = self.contact(handle)
        return bool(contact and contact.key_changed)

    def safety_verified(self, handle: str) -> bool:
        contact = self.contact(handle)
        return bool(contact and contact.safety_verified)

    def key_notice(self, handle: str) -> str | None:
        """The warning line the chat with ``handle`` ends with while a key change waits."""
        if not self.key_changed(handle):
            return None
        name, _ = self.name_of(handle)
        return (
            f"⚠ {name}'s safety number changed — compare it before trusting new messages "
            f"({self._key_of('safety_number')}: safety number)"
        )

    def _key_of(self, action: str) -> str:
        """How the key bound to ``action`` is shown (the person may have rebound it)."""
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.action == action:
                key = self.state.keymap.get(binding.id or "", binding.key).split(",")[0]
                return self.get_key_display(Binding(key, action))
        return action

    def forget_contact(self, handle: str) -> None:
        """Drop the cached entry of ``handle``: the client core changed it."""
        self._contacts.pop(handle, None)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast, the app's and its screens' alike: title and text are made safe first.

        A toast's title is never parsed as markup but is drawn as it is, so a sender's name in
        it reached the terminal raw (C1 CSI, U+202E). Escaping is idempotent, so text that a
        caller made safe already is unchanged."""
        super().notify(
            safe(message),
            title=safe(title, keep_newlines=False),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    # --- the push stream ------------------------------------------------------------------

    @work(exit_on_error=False, group="listen")
    async def listen(self) -> None:
        """Run the client's stream loop for as long as the app runs, whatever goes wrong."""
        while not self._stop.is_set():
            try:
                await self.messenger.listen(self._client_event, self._stop)
            except Exception as exc:  # survive anything: the loop is the app's lifeline
                self.log.error(f"listen failed: {exc!r}")
                self.post_message(ConnectionStateChanged(False, f"client error: {exc}"))
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=2.0)
                except TimeoutError:
                    pass

    def _client_event(self, event: ClientEvent) -> None:
        if isinstance(event, MessageStored):
            self.post_message(MessageArrived(event.message))
        elif isinstance(event, ConnectionChanged):
            self.post_message(ConnectionStateChanged(event.online, event.detail))

    def on_connection_state_changed(self, event: ConnectionStateChanged) -> None:
        # Only state is set here; each screen draws it from watch_connection's watchers,
        # whenever it is mounted (screens/main.py).
        self.connection = (
            Connection("online") if event.online else Connection("offline", event.detail)
        )

    def watch_connection(self, old: Connection, new: Connection) -> None:
        self.update_sub_title()
        if new.online and not old.online:
            # Choices may have changed on another device meanwhile; due reports can leave.
            self.fetch_preferences()
            self.flush_signals()

    def update_sub_title(self, unread: int | None = None, requests: int | None = None) -> None:
        """``@handle · online · N unread · K requests`` in the header, for every screen.

        Message requests get this quiet count and nothing more: no toast, no bell.
        """
        if unread is not None:
            self.unread_total = unread
        if requests is not None:
            self.requests_total = requests
        parts = [f"@{self.messenger.profile.handle}", self.connection.text]
        if self.unread_total:
            parts.append(f"{self.unread_total} unread")
        if self.requests_total:
            parts.append(f"{self.requests_total} request{'s' * (self.requests_total != 1)}")
        self.sub_title = " · ".join(parts)

    def on_message_arrived(self, event: MessageArrived) -> None:
        message = event.message
        if not self.has_main:
            return  # shutting down; the message is stored and shows next time
        if self._contacts.get(message.peer) is None or message.quarantine_reason == "key_changed":
            # A first message pins the contact; a key-changed one records a change on it.
            self._contacts.pop(message.peer, None)
            self._lookalikes = None  # the new contact may be a verified business
        self.main.message_arrived(message)
        if not self.is_request(message.peer):
            self.alert(message)

    def alert(self, message: StoredMessage) -> None:
        """Toast and/or bell for an arriving message, as set for its conversation.

        Marketing is never silent unless the person set that conversation to "off" themselves:
        the default for every conversation is a toast, and the global bell only adds to it.
        """
        mode = self.state.notify_mode(message.peer)
        if mode == "off" or message.quarantine_reason == HIDDEN_BY_CHOICE:
            return  # hidden by the person's own choice: kept with why, never announced
        name, verified = self.name_of(message.peer)
        marketing = is_marketing(message)
        title = ("Marketing · " if marketing else "New message · ") + name
        if verified:
            title += " ✔"  # names cannot hold a check mark: only the app draws one
        if name != message.peer:
            title += f" @{message.peer}"
        lookalike = self.lookalike_of(message.peer, name)
        if message.quarantine_reason == "key_changed":
            body = (
                "their safety number changed: a message signed with the new key is held until "
                f"you compare and accept it ({self._key_of('safety_number')})"
            )
        elif message.status == "quarantined":
            body = f"could not verify a message (reason: {message.quarantine_reason})"
        else:
            body = one_line(message.text, 120)
        if lookalike:
            body = f"⚠ {lookalike.warning()}\n{body}"
        self.notify(
            body,
            title=title,
            severity="warning" if marketing or lookalike else "information",
            markup=False,
        )
        if mode == "bell" or self.state.bell:
            self.bell()

    # --- sending --------------------------------------------------------------------------

    def on_reply_submitted(self, event: ReplySubmitted) -> None:
        self.send_reply(event.peer, event.text)

    def send_reply(
        self, peer: str, text: str, category: Literal["service", "quick_reply"] = "service"
    ) -> None:
        """Store the message as queued at once (nothing typed is lost), then flush."""
        try:
            self.messenger.queue_text(peer, text, category)
        except KeyChangedError:
            # Never sealed to a new key unasked: show its safety number; accepting sends.
            self.main.query_one(Composer).value = text  # kept if the person cancels
            self.ask_safety_number(peer, sending=text)
            return
        except PayloadTooLarge:
            self.notify("That message is too long to seal; split it up.", severity="error")
            self.main.query_one(Composer).value = text  # give it back rather than lose it
            return
        self.main.conversation_changed(peer)
        self.flush_outbox()

    @work(exit_on_error=False, group="flush")
    async def flush_outbox(self) -> None:
        report = await self.messenger.flush_outbox()
        self._lookalikes = None  # sealing may have pinned a new contact, a verified business too
        if report.pending:
            self.notify(
                f"{report.pending} message(s) queued: the relay is unreachable; they go out "
                "when it is back.",
                severity="warning",
            )
        for why in report.failed.values():
            self.notify(f"The relay refused a message: {why}", severity="error", markup=False)
        if report.held:
            self.notify(
                f"{len(report.held)} message(s) wait: the recipient's safety number changed. "
                f"Compare and accept it first ({self._key_of('safety_number')}).",
                severity="warning",
            )
        if not self.has_main:
            return
        current = self.main.current_peer
        if current:
            self.main.conversation_changed(current)

    # --- template buttons -----------------------------------------------------------------

    def on_template_button_pressed(self, event: TemplateButtonPressed) -> None:
        self.press_template_button(event.message, event.button)

    def press_template_button(self, message: StoredMessage, button: RenderedButton) -> None:
        business = message.peer
        if button.type in ("url", "copy_code"):
            self.record_signal([campaign_of(message)], "clicked")
        if button.type == "url" and button.url:
            self.copy_to_clipboard(button.url)
            if not self.is_headless:
                self.open_url(button.url)
            self.notify(f"Link copied (and opened): {button.url}", markup=False)
        elif button.type == "copy_code":
            self.copy_to_clipboard(button.copy_value or "")
            self.notify(f"Code copied: {button.copy_value}", markup=False)
        elif button.text == STOP_PROMOTIONS:
            # The platform's own control, on every marketing template (a business cannot
            # register a button that reads like it); it reads "Resume promotions" once used.
            stopped = bool(self.prefs and business in self.prefs.promotions_stopped)
            self.set_choice("promotions-stopped", business, not stopped)
        else:
            self.ask_quick_reply(business, button.text)

    def ask_quick_reply(self, business: str, text: str) -> None:
        """A business's quick reply leaves only when the person confirms it."""
        name, _ = self.name_of(business)

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.send_reply(business, text, category="quick_reply")

        self.push_screen(QuickReplyModal(business, name, text), confirmed)

    # --- interaction signals ----------------------------------------------------------------

    def record_signal(self, campaigns: Iterable[str | None], event: Event) -> None:
        """Note ``event`` on each campaign's pending report (local only; it leaves later,
        noised, delayed and anonymously). Never lets a signal problem disturb the app."""
        for campaign in dict.fromkeys(c for c in campaigns if c):
            try:
                self.messenger.signals.record(campaign, event)
            except Exception as exc:  # a signal is never worth an error in the person's face
                self.log.error(f"recording {event} for {campaign} failed: {exc!r}")

    def flush_signals(self) -> None:
        """Send the signal reports whose moment has come (each was given a random one)."""
        if self.online and not self._flushing_signals:
            self._flushing_signals = True
            self._flush_signals()

    @work(exit_on_error=False, group="signals")
    async def _flush_signals(self) -> None:
        try:
            result = await self.messenger.signals.flush()
            if result is not None:
                self.log.info(f"signal reports: {result.counted} counted")
        except KeyCheckFailed as exc:
            # The relay gave this device a key it does not give everyone, or rewrote its key
            # log: the person hears of it (the report itself stays on the device).
            self.notify(
                str(exc), title="Report withheld", severity="error", timeout=30, markup=False
            )
        except Exception as exc:  # the relay away, a refusal: the reports wait for next time
            self.log.warning(f"sending signal reports failed: {exc!r}")
        finally:
            self._flushing_signals = False

    def set_signals_enabled(self, on: bool) -> None:
        signals = self.messenger.signals
        signals.settings.enabled = on
        try:
            signals.save_settings()
        except OSError as exc:
            self.notify(f"Could not save the setting: {exc}", severity="error", markup=False)
            return
        self.notify(
            "Optional signals on: reports carry your (noised) answers"
            if on
            else "Optional signals off: reports carry only random noise"
        )

    def action_dismiss_marketing(self) -> None:
        """ "Not interested" in the selected marketing message (or the newest in the chat)."""
        if not self.has_main or self.main.current_peer is None:
            self.notify("Open a conversation with a business first.", severity="warning")
            return
        view = self.main.query_one(ConversationView)
        message = view.selected_message
        if not (message and is_marketing(message) and campaign_of(message)):
            message = next(
                (m for m in reversed(view.messages) if is_marketing(m) and campaign_of(m)), None
            )
        if message is None:
            self.notify("No marketing message to dismiss here.", severity="warning")
            return
        self.answer_marketing(message, "not_interested")

    def on_marketing_answered(self, event: MarketingAnswered) -> None:
        self.answer_marketing(event.message, event.answer)

    def answer_marketing(self, message: StoredMessage, answer: Answer) -> None:
        """Note the answer on the campaign's pending report (interested counts as a click,
        not interested as a dismissal) and leave it under the message, on this device."""
        self.record_signal(
            [campaign_of(message)], "clicked" if answer == "interested" else "dismissed"
        )
        self.state.answers[message.msg_id] = answer
        self.save_state()
        if self.has_main:
            self.main.conversation_changed(message.peer)
        name, _ = self.name_of(message.peer)
        said = "Interested in" if answer == "interested" else "Not interested in"
        self.notify(f"{said} the promotion from {name}.", markup=False)

    def on_why_marketing_asked(self, event: WhyMarketingAsked) -> None:
        business = event.message.peer
        name, verified = self.name_of(business)
        prefs = self.prefs
        self.push_screen(
            WhyMarketingScreen(
                WhyMarketing(
                    business=business,
                    name=name,
                    verified=verified,
                    level=dict(LEVELS).get(prefs.level, prefs.level) if prefs else None,
                    weekly_limit=prefs.weekly_limit if prefs else None,
                    accepted=not self.is_request(business),
                    stop_key=self._key_of("toggle_promotions"),
                )
            )
        )

    # --- the relay's copy of the person's choices -------------------------------------------

    async def _relay_call(self, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await call()
        except RelayUnavailable:
            self.notify(
                f"{what}: the relay is unreachable; try again when online.", severity="warning"
            )
        except RelayError as exc:
            self.notify(f"{what}: {exc.message}", severity="error", markup=False)
        return None

    def _prefs_changed(self, prefs: Preferences) -> None:
        self.prefs = prefs
        accepted = set(prefs.accepted)
        for request in self.store.requests():  # accepted on another device of this account
            if request.peer in accepted:
                self.store.set_accepted(request.peer)
        if self.has_main:
            self.main.refresh_chats()

    @work(exit_on_error=False, group="prefs")
    async def fetch_preferences(self) -> None:
        prefs = await self._relay_call("Loading your choices", self.messenger.api.preferences)
        if prefs:
            self._prefs_changed(prefs)

    @work(exit_on_error=False, group="prefs")
    async def set_choice(self, choice: str, business: str, on: bool) -> None:
        words = {
            ("blocked", True): "Blocked",
            ("blocked", False): "Unblocked",
            ("promotions-stopped", True): "Promotions stopped from",
            ("promotions-stopped", False): "Promotions resumed from",
        }[(choice, on)]
        prefs = await self._relay_call(
            words, lambda: self.messenger.api.set_choice(choice, business, on)
        )
        if prefs:
            self._prefs_changed(prefs)
            self.notify(f"{words} @{business}", markup=False)

    @work(exit_on_error=False, group="prefs")
    async def set_level(self, level: SetLevel) -> None:
        prefs = await self._relay_call(
            "Marketing level", lambda: self.messenger.api.set_level(level)
        )
        if prefs:
            self._prefs_changed(prefs)
            limit = f" ({prefs.weekly_limit} a week)" if prefs.level == "weekly" else ""
            self.notify(f"Marketing level: {prefs.level}{limit}")

    # --- first contact and reports ----------------------------------------------------------

    def is_request(self, peer: str) -> bool:
        """``peer`` wrote first and the person has neither replied nor accepted."""
        convo = self.store.conversation(peer)
        return convo is not None and not convo.accepted

    def on_request_answered(self, event: RequestAnswered) -> None:
        event.stop()
        if event.choice == "accept":
            self.accept_request(event.peer)
        elif event.choice == "block":
            self.ask_block(event.peer)
        else:
            self.action_report(event.peer)

    def action_accept_request(self) -> None:
        peer = self.main.current_peer
        if peer is not None and self.is_request(peer):
            self.accept_request(peer)

    @work(exit_on_error=False, group="prefs")
    async def accept_request(self, peer: str) -> None:
        """Accept ``peer``'s message request at the relay, then here (a worker)."""
        prefs = await self._relay_call(
            "Accepting the request", lambda: self.messenger.accept_request(peer)
        )
        if prefs is None:
            return  # _relay_call showed why
        self._prefs_changed(prefs)
        self.notify(f"Accepted @{peer}: their messages are no longer held back", markup=False)
        if self.has_main and self.main.current_peer == peer:
            self.main.open_conversation(peer)

    def action_report(self, peer: str | None = None) -> None:
        peer = peer or self.main.current_peer
        if peer is None:
            self.notify("Open a conversation first.", severity="warning")
            return
        name, _ = self.name_of(peer)
        messages = self.store.last_incoming(peer, REPORT_LIMIT)

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.state.record_report(peer, messages)
                self.save_state()
                self.send_report(peer, messages)

        self.push_screen(ReportModal(peer, name, messages, self.time_format), confirmed)

    @work(exit_on_error=False, group="report")
    async def send_report(self, business: str, messages: list[StoredMessage]) -> None:
        """Seal the shown messages to the moderation desk and send them (a worker)."""
        sent = await self._relay_call("Report", lambda: self.messenger.report(business, messages))
        if sent is None:
            return
        how = "sent" if sent.status == "sent" else "queued (sent when back online)"
        self.notify(
            f"Report about @{business} {how} to the moderation desk, sealed to its key.",
            markup=False,
        )

    # --- safety numbers and key changes ----------------------------------------------------

    def action_safety_number(self, peer: str | None = None) -> None:
        peer = peer or (self.main.current_peer if self.has_main else None)
        if peer is None:
            self.notify("Open a conversation first.", severity="warning")
            return
        self.ask_safety_number(peer)

    def ask_safety_number(self, peer: str, sending: str | None = None) -> None:
        """Show the safety number with ``peer`` and act on the person's choice; ``sending``:
        the text they tried to send, which goes out only if they accept a changed key."""
        contact = self.store.contact(peer)
        if contact is None:
            self.notify(
                f"No keys pinned for @{peer} yet: they are pinned with the first message.",
                severity="warning",
                markup=False,
            )
            return
        view = SafetyView(
            handle=peer,
            name=self.name_of(peer)[0],
            number=self.messenger.safety_number(contact),
            verified=contact.safety_verified,
            new_number=(
                self.messenger.safety_number(contact, new=True) if contact.key_changed else None
            ),
        )

        def chosen(choice: SafetyChoice | None) -> None:
            if choice == "accept":
                self.accept_new_key(peer, sending)
            elif choice in ("verify", "unverify"):
                self.messenger.mark_verified(peer, verified=choice == "verify")
                self.contact_changed(peer)
                self.notify(
                    f"Safety number with @{peer} "
                    + ("marked as verified" if choice == "verify" else "no longer verified"),
                    markup=False,
                )

        self.push_screen(SafetyNumberModal(view, sending=sending is not None), chosen)

    @work(exit_on_error=False, group="keys")
    async def accept_new_key(self, peer: str, sending: str | None = None) -> None:
        """Pin ``peer``'s new key, show what it signed, then send what waited for it."""
        released = await self._relay_call(
            "Accepting the new key", lambda: self.messenger.accept_new_key(peer)
        )
        if released is None:
            return
        self.contact_changed(peer)
        shown = f"; {len(released)} held message(s) now shown" if released else ""
        self.notify(f"Accepted @{peer}'s new key{shown}.", markup=False)
        if sending is not None and self.has_main:
            composer = self.main.query_one(Composer)
            if composer.value == sending:
                composer.value = ""
            self.send_reply(peer, sending)
        else:
            self.flush_outbox()  # anything queued before the change was known

    def contact_changed(self, peer: str) -> None:
        self.forget_contact(peer)
        if self.has_main:
            self.main.conversation_changed(peer)

    # --- actions --------------------------------------------------------------------------

    def _current_business(self) -> str | None:
        peer = self.main.current_peer
        if peer is None or not self.is_business(peer):
            self.notify("Open a conversation with a business first.", severity="warning")
            return None
        return peer

    def action_block(self) -> None:
        if business := self._current_business():
            if self.prefs and business in self.prefs.blocked:
                self.set_choice("blocked", business, False)  # unblocking needs no asking
            else:
                self.ask_block(business)

    def ask_block(self, business: str) -> None:
        """Block ``business`` once the person confirms (the dialog opens on Cancel)."""
        name, _ = self.name_of(business)

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.set_choice("blocked", business, True)

        self.push_screen(ConfirmBlockModal(business, name), confirmed)

    def action_toggle_promotions(self) -> None:
        if business := self._current_business():
            stopped = bool(self.prefs and business in self.prefs.promotions_stopped)
            self.set_choice("promotions-stopped", business, not stopped)

    def action_help(self) -> None:
        screen = self.screen
        if not isinstance(screen, HelpScreen):
            on_main = isinstance(screen, MainScreen)
            title = getattr(screen, "HELP_TITLE", None) or screen.title or "Sealpost"
            self.push_screen(HelpScreen(self.key_help(screen), title=title, general=on_main))

    def key_help(self, screen: Screen[object]) -> list[tuple[str, str]]:
        """The keys that work on ``screen`` now (its own, its focused widgets', the app's
        that apply there), as the person's keymap has them; hidden ones too."""
        keys: dict[tuple[str, str], list[str]] = {}
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not (
                active.enabled and binding.description and _declared_here(active.node, binding)
            ):
                continue
            shown = self.get_key_display(Binding(key, binding.action))
            keys.setdefault((binding.action, binding.description), []).append(shown)
        return [(", ".join(shown), description) for (_, description), shown in keys.items()]

    def action_settings(self) -> None:
        if isinstance(self.screen, SettingsScreen):
            return
        peer = self.main.current_peer
        business = peer if peer and self.is_business(peer) else None
        self.push_screen(
            SettingsScreen(
                self.prefs,
                business,
                self.state.bell,
                peer=peer,
                peer_name=self.name_of(peer)[0] if peer else None,
                notify=self.state.notify_mode(peer) if peer else "toast",
                signals=self.messenger.signals.settings.enabled,
            )
        )

    def action_business_tools(self) -> None:
        if not self.is_business_profile:
            self.notify("Business tools are for business profiles.", severity="warning")
            return
        if isinstance(self.screen, BusinessToolsScreen):
            return
        # Installed, so closing it neither loses a half-typed template nor cancels a campaign
        # still being sealed and sent: its workers keep running behind the chats.
        if not self.is_screen_installed("business-tools"):
            self.install_screen(BusinessToolsScreen(), "business-tools")
        self.push_screen("business-tools")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        top = self.screen_stack[-1] if self.screen_stack else None  # none while starting
        on_tools = isinstance(top, BusinessToolsScreen)
        if action == "business_tools":
            # Not in the footer of a person's app, nor twice on the tools themselves.
            return self.is_business_profile and not on_tools
        if action in CHAT_ACTIONS and not isinstance(top, MainScreen):
            # About the open chat: not in the footer (nor working) on the ledger, the
            # business tools or a dialog, where there is no chat to act on.
            return False
        if action == "accept_request":  # in the footer only while a request is open
            peer = self.main.current_peer if self.has_main else None
            return peer is not None and self.is_request(peer)
        return True

    def action_search(self) -> None:
        if isinstance(self.screen, SearchScreen):
            return

        def chosen(hit: SearchHit | None) -> None:
            if hit is not None:
                if self.screen is not self.main:
                    self.switch_to_main()
                self.main.open_conversation(hit.peer, at=hit.msg_id)

        self.push_screen(SearchScreen(self.store, self.name_of, self.time_format), chosen)

    def switch_to_main(self) -> None:
        while len(self.screen_stack) > 1 and self.screen is not self.main:
            self.pop_screen()

    def action_ledger(self) -> None:
        if not isinstance(self.screen, LedgerScreen):
            self.push_screen(
                LedgerScreen(
                    self.messenger.ledger.entries, self.messenger.profile.dir, self.time_format
                )
            )

    def set_notify_mode(self, peer: str, mode: NotifyMode) -> None:
        self.state.set_notify_mode(peer, mode)
        self.save_state()
        self.main.refresh_chats()
        name, _ = self.name_of(peer)
        self.notify(f"Notifications for {name}: {NOTIFY_TEXT[mode]}", markup=False)

    def action_cycle_notify(self) -> None:
        peer = self.main.current_peer
        if peer is None:
            self.notify("Open a conversation first.", severity="warning")
            return
        mode = self.state.notify_mode(peer)
        self.set_notify_mode(peer, NOTIFY_MODES[(NOTIFY_MODES.index(mode) + 1) % 3])

    def action_privacy(self) -> None:
        if isinstance(self.screen, PrivacyExplainer):
            return
        budget = None
        peer = self.main.current_peer if self.has_main else None
        if peer is not None and self.is_business(peer):
            spent = self.messenger.signals.business_budget(peer)
            budget = budget_line(peer, spent.spent, spent.cap)
        self.push_screen(PrivacyExplainer(budget, classes="sealpost-modal"))

    def action_filter(self) -> None:
        self.main.query_one("#chat-filter").focus()

    def action_toggle_theme(self) -> None:
        self.set_theme_name("textual-light" if self.theme == "textual-dark" else "textual-dark")

    def set_theme_name(self, theme: str) -> None:
        self.theme = theme
        self.state.theme = theme
        self.save_state()

    def set_bell(self, on: bool) -> None:
        self.state.bell = on
        self.save_state()

    def save_state(self) -> None:
        self.state.save(self.state_path)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Keys and how the app works", self.action_help)
        yield SystemCommand(
            "Settings", "Marketing level, blocks, bell, theme", self.action_settings
        )
        yield SystemCommand(
            "What is shared", "What the platform can and cannot see", self.action_privacy
        )
        yield SystemCommand("Filter chats", "Fuzzy-find a conversation", self.action_filter)
        yield SystemCommand(
            "Search messages", "In every conversation, on this device", self.action_search
        )
        yield SystemCommand(
            "Privacy ledger", "Every request this app sent to the relay", self.action_ledger
        )
        yield SystemCommand(
            "Notifications for this chat: toast / bell / off",
            "Cycle; marketing is never silent unless you choose off",
            self.action_cycle_notify,
        )
        yield SystemCommand(
            "Block / unblock this business", "The relay refuses its messages", self.action_block
        )
        yield SystemCommand(
            "Stop / resume promotions", "From this business only", self.action_toggle_promotions
        )
        yield SystemCommand(
            "Report this business", "Shows exactly what would be sent first", self.action_report
        )
        yield SystemCommand(
            "Safety number",
            "Compare it with this contact; accept their new key if it changed",
            self.action_safety_number,
        )
        yield SystemCommand(
            "Not interested in this promotion",
            "A dismissal, counted only in the campaign's noised, anonymous report",
            self.action_dismiss_marketing,
        )
        if self.is_business_profile:
            yield SystemCommand(
                "Business tools",
                "Templates, campaigns, budget and analytics",
                self.action_business_tools,
            )
        yield SystemCommand("Toggle dark / light theme", "", self.action_toggle_theme)


def _declared_here(node: object, binding: Binding) -> bool:
    """``binding`` is one of this package's, not a built-in widget's (scroll left, focus
    next...): the help lists what Sealpost does, and the footer shows the rest."""
    return any(
        cls.__module__.startswith("client.")
        and any(
            isinstance(b, Binding) and b.action == binding.action
            for b in vars(cls).get("BINDINGS", ())
        )
        for cls in type(node).__mro__
    )
