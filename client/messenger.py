"""The headless client: accounts, sending through a crash-safe outbox, syncing and listening."""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nacl.exceptions import CryptoError

from client.events import ClientEvent, ConnectionChanged, MessageStored
from client.ledger import PrivacyLedger
from client.profile import (
    Profile,
    ProfileError,
    ProfileInfo,
    create_profile,
    load_profile,
    profile_dir,
)
from client.relay_api import RelayAPI, RelayError, RelayUnavailable
from client.settings import ClientSettings
from client.signals import SignalAgent
from client.store import Contact, Conversation, LocalStore, OutboxEntry, StoredMessage
from client.template_messages import show_template_message
from shared.api import AccountInfo, MailboxItem, RegisterAccount
from shared.envelope import ChatContent, ChatPayload, Envelope, TemplatePayload
from shared.identifiers import new_message_id
from shared.keys import AccountKeys, PublicKeys
from shared.seal import (
    PayloadTooLarge,
    VerificationError,
    open_envelope,
    padded_size,
    seal_envelope,
    sign_payload,
)
from shared.tokens import TokenError

log = logging.getLogger("sealpost.client")

ACK_BATCH = 100
REPORT_MESSAGES = 5  # DESIGN: a report carries at most the last five messages
REPORT_TEXT_CHARS = 2000
ACK_LULL_S = 0.05


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SyncReport:
    stored: list[StoredMessage] = field(default_factory=list)
    duplicates: int = 0

    @property
    def quarantined(self) -> list[StoredMessage]:
        return [m for m in self.stored if m.status == "quarantined"]


@dataclass
class FlushReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # msg id -> why the relay refused it
    pending: int = 0  # still queued because the relay is unreachable


class Messenger:
    """One profile's client core. Use ``async with Messenger.open(...)``."""

    def __init__(self, profile: Profile, settings: ClientSettings | None = None) -> None:
        self.profile = profile
        self.settings = settings or ClientSettings(home=profile.home)
        self.store = LocalStore(profile.store_path)
        self.ledger = PrivacyLedger(profile.ledger_path)
        self.api = RelayAPI(
            profile.info.relay_url,
            profile.handle,
            profile.keys,
            self.ledger,
            timeout_s=self.settings.request_timeout_s,
            max_retries=self.settings.max_retries,
        )
        self.signals = SignalAgent(self.api, self.store.engine, profile.dir, self.ledger)
        self._flush_lock = asyncio.Lock()

    @classmethod
    def open(cls, home: Path, name: str) -> "Messenger":
        return cls(load_profile(home, name), ClientSettings(home=home))

    @classmethod
    async def create_account(
        cls,
        home: Path,
        name: str,
        handle: str,
        relay_url: str,
        *,
        country: str | None = None,
        business: bool = False,
        display_name: str | None = None,
    ) -> "Messenger":
        """Generate keys, register them with the relay, then write the profile.

        Nothing is written unless the relay accepted the account, so a failed attempt can
        simply be repeated.
        """
        profile_dir(home, name)  # validates the name before any network traffic
        keys = AccountKeys.generate()
        request = RegisterAccount(
            handle=handle,
            kind="business" if business else "person",
            display_name=display_name or handle,
            country=country,
            sign_key=keys.public.sign_b64,
            box_key=keys.public.box_b64,
        )
        if (home / "profiles" / name / "profile.json").exists():
            raise ProfileError(f"Profile '{name}' already exists; pick another --profile.")
        ledger = PrivacyLedger(None)  # held in memory until the profile exists
        async with RelayAPI(relay_url, handle, keys, ledger) as api:
            await api.register(request)
        info = ProfileInfo(
            name=name,
            handle=handle,
            relay_url=relay_url,
            kind=request.kind,
            display_name=request.display_name,
            country=country,
        )
        profile = create_profile(home, info, keys)
        ledger.attach(profile.ledger_path)
        messenger = cls(profile, ClientSettings(home=home))
        return messenger

    async def aclose(self) -> None:
        await self.api.aclose()
        self.store.close()

    async def __aenter__(self) -> "Messenger":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # --- directory -------------------------------------------------------------------------

    async def contact(self, handle: str) -> Contact:
        """The peer's directory entry, pinned locally on first use."""
        cached = self.store.contact(handle)
        if cached:
            return cached
        info: AccountInfo = await self.api.lookup(handle)
        contact = Contact(
            handle=info.handle,
            kind=info.kind,
            display_name=info.display_name,
            verified=info.verified,
            sign_key=info.sign_key,
            box_key=info.box_key,
        )
        self.store.save_contact(contact)
        return contact

    # --- sending ---------------------------------------------------------------------------

    async def send_text(self, to: str, text: str) -> StoredMessage:
        """Queue a chat message durably, then try to deliver the outbox.

        The message is in the local store before any network I/O; if the relay is down it
        stays queued (status ``queued``) and goes out with the next flush.
        """
        message = self.queue_text(to, text)
        await self.flush_outbox()
        return self.store_message(message.msg_id)

    def queue_text(self, to: str, text: str) -> StoredMessage:
        """Store a chat message as ``queued`` without network I/O; :meth:`flush_outbox` sends it.

        Lets an interactive client show the message at once, before the relay answers.
        """
        message = StoredMessage(
            msg_id=new_message_id(),
            peer=to,
            direction="out",
            sender=self.profile.handle,
            recipient=to,
            text=text,
            sent_at=now_ms(),
            status="queued",
        )
        # Refuse what could never be sealed now, rather than leave it stuck in the outbox.
        padded_size(len(sign_payload(self._payload(message), self.profile.keys)))
        self.store.queue_outgoing(message, Conversation(peer=to, display_name=to))
        return message

    def store_message(self, msg_id: str) -> StoredMessage:
        with self.store.session() as s:
            found = s.get(StoredMessage, msg_id)
            assert found is not None
            return found

    async def report(self, business: str, messages: list[StoredMessage]) -> StoredMessage:
        """Send a report about ``business`` to the moderation desk: exactly ``messages`` (at
        most the last five from it), signed and sealed to the desk's key like any message, so
        the relay routes it without reading it. Returns the sent (or queued) report."""
        desk = self.settings.moderation_handle
        try:
            await self.contact(desk)
        except RelayError as exc:
            if exc.code == "unknown_handle":
                raise RelayError(
                    404, "no_moderation_desk", f"This relay has no moderation desk (@{desk})."
                ) from exc
            raise
        report = {
            "report": {
                "business": business,
                "messages": [
                    {
                        "id": m.msg_id,
                        "sent_at": m.sent_at,
                        "label": m.label,
                        "text": (m.text or "")[:REPORT_TEXT_CHARS],
                    }
                    for m in messages[-REPORT_MESSAGES:]
                ],
            }
        }
        return await self.send_text(desk, json.dumps(report, ensure_ascii=False, indent=1))

    @staticmethod
    def _payload(message: StoredMessage) -> ChatPayload:
        return ChatPayload(
            id=message.msg_id,
            sender=message.sender,
            recipient=message.recipient,
            sent_at=message.sent_at,
            content=ChatContent(text=message.text or ""),
        )

    def _seal(self, entry: OutboxEntry, contact: Contact) -> Envelope:
        payload = self._payload(self.store_message(entry.msg_id))
        keys = PublicKeys.from_b64(contact.sign_key, contact.box_key)
        return seal_envelope(payload, self.profile.keys, keys.box)

    async def flush_outbox(self) -> FlushReport:
        """Send every queued message; relay refusals are recorded on the message, not retried."""
        # One flush at a time: a send and a reconnect flushing together could seal the same
        # entry twice, and the relay takes a second, different envelope under one id as a
        # conflict rather than a duplicate.
        async with self._flush_lock:
            return await self._flush_outbox()

    async def _flush_outbox(self) -> FlushReport:
        report = FlushReport()
        entries = self.store.outbox()
        for index, entry in enumerate(entries):
            try:
                if entry.envelope_json is None:
                    contact = await self.contact(entry.recipient)
                    entry.envelope_json = self._seal(entry, contact).model_dump_json()
                    self.store.update_outbox(entry)
                envelope = Envelope.model_validate_json(entry.envelope_json)
                await self.api.send(envelope)
            except (RelayUnavailable, RelayError) as exc:
                if isinstance(exc, RelayError) and not exc.transient:
                    self.store.mark_sent(entry.msg_id, status="failed", error=exc.message)
                    report.failed[entry.msg_id] = exc.message
                    continue
                entry.attempts += 1
                entry.last_error = str(exc)
                self.store.update_outbox(entry)
                report.pending = len(entries) - index
                return report
            except (PayloadTooLarge, CryptoError) as exc:
                self.store.mark_sent(entry.msg_id, status="failed", error=str(exc))
                report.failed[entry.msg_id] = str(exc)
                continue
            self.store.mark_sent(entry.msg_id)
            report.sent.append(entry.msg_id)
        return report

    # --- receiving -------------------------------------------------------------------------

    async def _receive(self, item: MailboxItem) -> StoredMessage | None:
        """Open, verify and store one envelope; returns it if new. Never drops a message."""
        envelope = item.envelope
        if self.store.has_message(envelope.id):
            return None
        base = dict(
            msg_id=envelope.id,
            peer=envelope.sender,
            direction="in",
            sender=envelope.sender,
            recipient=envelope.recipient,
            kind=envelope.kind,
            category=envelope.category,
            received_at=now_ms(),
            campaign_id=envelope.campaign_id,
        )
        conversation = Conversation(peer=envelope.sender, display_name=envelope.sender)
        try:
            contact = await self.contact(envelope.sender)
            conversation = Conversation(
                peer=contact.handle,
                display_name=contact.display_name,
                kind=contact.kind,
                verified=contact.verified,
            )
            keys = PublicKeys.from_b64(contact.sign_key, contact.box_key)
            if envelope.recipient != self.profile.handle:
                raise VerificationError(
                    "recipient_mismatch", f"addressed to {envelope.recipient}, not to this account"
                )
            payload = open_envelope(envelope, self.profile.keys, keys)
            shown = (
                await show_template_message(self.api, self.store, envelope, payload)
                if isinstance(payload, TemplatePayload)
                else None
            )
        except (VerificationError, RelayError) as exc:
            if isinstance(exc, RelayError) and exc.code != "unknown_handle":
                raise  # can't check it now (rate limit, relay trouble): leave it unacked
            reason = exc.reason if isinstance(exc, VerificationError) else "unknown_sender"
            detail = exc.detail if isinstance(exc, VerificationError) else exc.message
            message = StoredMessage(
                **base,
                sent_at=base["received_at"],
                status="quarantined",
                quarantine_reason=reason,
                quarantine_detail=detail,
                envelope_json=envelope.model_dump_json(),
            )
        else:
            message = StoredMessage(
                **base,
                sent_at=payload.sent_at,
                status="verified",
                text=shown.text if shown else payload.content.text,  # type: ignore[union-attr]
                label=shown.label if shown else None,
                payload_json=payload.model_dump_json(),
                rendered_json=shown.rendered.model_dump_json() if shown else None,
            )
        return message if self.store.add_incoming(message, conversation) else None

    async def _receive_and_ack(self, items: list[MailboxItem]) -> SyncReport:
        report = SyncReport()
        for item in items:
            stored = await self._receive(item)
            if stored is None:
                report.duplicates += 1
            else:
                report.stored.append(stored)
        await self._ack(items, report.stored)
        return report

    async def _ack(self, items: list[MailboxItem], stored: list[StoredMessage]) -> None:
        """Ack what the store has committed, then ask for signal tokens for campaign copies."""
        if not items:
            return
        # Ack only after the store committed: a crash before this line means redelivery,
        # which the store ignores; never a loss.
        await self.api.ack([i.envelope.id for i in items])
        for message in stored:
            campaign_id = _campaign_of(items, message.msg_id)
            if message.status != "verified" or message.kind != "template" or not campaign_id:
                continue
            try:
                await self.signals.on_delivered(message.msg_id, campaign_id)
            except (RelayError, RelayUnavailable, TokenError) as exc:
                # No token, no report for this campaign: a gap in the statistics, never a
                # reason to hold up the person's messages.
                log.warning("no signal token for %s: %s", campaign_id, exc)

    async def sync(self) -> SyncReport:
        """Fetch every pending envelope, store it exactly once, and ack it."""
        report = SyncReport()
        after = 0
        while True:
            page = await self.api.mailbox_page(after=after)
            if not page.items:
                return report
            part = await self._receive_and_ack(page.items)
            report.stored += part.stored
            report.duplicates += part.duplicates
            after = page.next_after

    async def listen(
        self, on_event: Callable[[ClientEvent], None], stop: asyncio.Event | None = None
    ) -> None:
        """Stream the mailbox until ``stop`` is set, reconnecting with backoff.

        Never raises for network trouble, so a long-running UI keeps going while the relay is
        away; ``on_event`` hears about every stored message and every connection change.
        """
        stop = stop or asyncio.Event()
        delay = 1.0
        progress = _StreamProgress()
        stopping = asyncio.create_task(stop.wait())
        streaming: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                streaming = asyncio.create_task(self._stream_once(on_event, progress))
                await asyncio.wait({streaming, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    streaming.cancel()
                    await asyncio.gather(streaming, return_exceptions=True)
                    return
                try:
                    streaming.result()
                    detail = "the relay closed the stream"
                except (RelayUnavailable, RelayError) as exc:
                    detail = str(exc)
                if progress.advanced:  # it worked for a while: reconnect quickly
                    progress.advanced = False
                    delay = 1.0
                on_event(
                    ConnectionChanged(online=False, detail=f"{detail}; retrying in {delay:.0f} s")
                )
                await asyncio.wait({stopping}, timeout=delay)
                delay = min(delay * 2, 30.0)
        finally:
            stopping.cancel()
            if streaming is not None and not streaming.done():
                # Cancelled from outside (e.g. a UI shutting down): don't orphan the stream.
                streaming.cancel()
                await asyncio.gather(streaming, return_exceptions=True)

    async def _stream_once(
        self, on_event: Callable[[ClientEvent], None], progress: "_StreamProgress"
    ) -> None:
        await self.flush_outbox()
        on_event(ConnectionChanged(online=True))
        # Each envelope is stored and shown at once; acks go out in small batches (after a
        # short lull, or every 100), so a burst costs a few requests rather than one each.
        unacked: list[MailboxItem] = []
        stored: list[StoredMessage] = []

        async def ack_now() -> None:
            items, done = unacked[:], stored[:]
            unacked.clear()
            stored.clear()
            await self._ack(items, done)

        async def ack_after_lull() -> None:
            loop = asyncio.get_running_loop()
            wait = ACK_LULL_S
            while wait > 0:  # sleep until no envelope has come for ACK_LULL_S
                await asyncio.sleep(wait)
                wait = ACK_LULL_S - (loop.time() - last_arrival[0])
            with contextlib.suppress(RelayError, RelayUnavailable):  # redelivered later
                await ack_now()

        acker: asyncio.Task[None] | None = None
        last_arrival = [0.0]
        try:
            async for item in self.api.stream():
                message = await self._receive(item)
                progress.advanced = True
                last_arrival[0] = asyncio.get_running_loop().time()
                unacked.append(item)
                if message is not None:
                    stored.append(message)
                    on_event(MessageStored(message))
                if len(unacked) >= ACK_BATCH:
                    await ack_now()
                elif acker is None or acker.done():
                    acker = asyncio.create_task(ack_after_lull())
        finally:
            if acker is not None and not acker.done():
                acker.cancel()
            if unacked:
                # Best effort on the way out; anything unacked is simply delivered again.
                with contextlib.suppress(RelayError, RelayUnavailable):
                    await asyncio.shield(ack_now())


@dataclass
class _StreamProgress:
    advanced: bool = False  # something arrived since the last (re)connect


def _campaign_of(items: list[MailboxItem], msg_id: str) -> str | None:
    return next((i.envelope.campaign_id for i in items if i.envelope.id == msg_id), None)
