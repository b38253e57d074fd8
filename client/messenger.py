"""The headless client: accounts, sending through a crash-safe outbox, syncing and listening."""

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nacl.exceptions import CryptoError

from client.events import ClientEvent, ConnectionChanged, MessageStored
from client.ledger import PrivacyLedger
from client.opening import Job, Opener, Outcome, SenderKeys
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
from client.store import (
    HIDDEN_BY_CHOICE,
    Contact,
    Conversation,
    LocalStore,
    OutboxEntry,
    StoredMessage,
    message_row,
    stored_message,
)
from client.template_messages import ShownTemplate, prefetch_template, show_template_message
from shared.api import (
    MAX_TOKEN_BATCH,
    AccountInfo,
    MailboxItem,
    MailboxPage,
    Preferences,
    RegisterAccount,
)
from shared.display_names import name_or_handle
from shared.envelope import ChatContent, ChatPayload, Envelope, TemplatePayload
from shared.identifiers import new_message_id
from shared.keys import AccountKeys, PublicKeys, key_fingerprint
from shared.safety_numbers import Identity, safety_number
from shared.seal import (
    PayloadTooLarge,
    VerificationError,
    padded_size,
    seal_envelope,
    sign_payload,
)
from shared.tokens import TokenError
from shared.version import MAX_BATCH_ENVELOPES

log = logging.getLogger("sealpost.client")

ACK_BATCH = 100
REPORT_MESSAGES = 5  # DESIGN: a report carries at most the last five messages
REPORT_TEXT_CHARS = 2000
# Catching up: a short first page gets the work going sooner, then the relay's largest.
FIRST_SYNC_PAGE = 200
SYNC_PAGE = 1000
# Fewer envelopes than this at once are opened here; more, in worker processes (see
# client/opening.py), in jobs of OPEN_CHUNK, so that a page is opened on every core.
PARALLEL_OPEN_MIN = 200
OPEN_CHUNK = 250
OPEN_WORKERS = min(4, os.cpu_count() or 1)
# A message that fails its signature check makes the client ask the directory whether the
# sender's keys changed; at most this often per sender, so that a sender sending garbage
# signatures cannot spend the person's lookups.
KEY_RECHECK_S = 60.0
# Quarantined messages that accepting a contact's new key may release: those held as signed by
# the new key, and any refused as badly signed before the change was known.
RELEASABLE = ("key_changed", "bad_signature")


def now_ms() -> int:
    return int(time.time() * 1000)


class SyncReport:
    """What a sync stored: ``stored``, the new messages in order, and how many envelopes were
    ``duplicates`` of stored ones.

    The messages are built from the stored rows on first use: a catch-up of thousands need
    not make (and have the garbage collector scan) objects that nobody reads.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.duplicates = 0
        self._stored: list[StoredMessage] = []

    @property
    def stored(self) -> list[StoredMessage]:
        if len(self._stored) < len(self.rows):
            self._stored += [stored_message(r) for r in self.rows[len(self._stored) :]]
        return self._stored

    @property
    def quarantined(self) -> list[StoredMessage]:
        return [m for m in self.stored if m.status == "quarantined"]


@dataclass
class FlushReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # msg id -> why the relay refused it
    pending: int = 0  # still queued because the relay is unreachable
    # Still queued, not sealed: the recipient's key changed and the person has not accepted it.
    held: list[str] = field(default_factory=list)


class KeyChangedError(RelayError):
    """A contact's key changed and the person has not accepted the new one: nothing is sealed
    to it until they do (after comparing the new safety number)."""

    def __init__(self, handle: str) -> None:
        super().__init__(
            0,
            "key_changed",
            f"@{handle}'s safety number changed: the directory now gives a different key. "
            f"Nothing was sealed to it. Compare the new safety number with @{handle}, then "
            "accept the new key before sending.",
        )
        self.handle = handle


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
            other_urls=profile.info.other_relays,
        )
        self.signals = SignalAgent(
            self.api,
            self.store.engine,
            profile.dir,
            self.ledger,
            shuffler_url=self.settings.shuffler_url or profile.info.shuffler_url,
            key_log_fingerprint=self.settings.token_log_key_fingerprint,
        )
        self._flush_lock = asyncio.Lock()
        # Pinned entries change only through this object (a key change, the person's
        # verification), which updates this copy too: kept once read.
        self._contacts: dict[str, Contact] = {}
        self._key_checked: dict[str, float] = {}  # handle -> when its keys were last re-checked
        self._opener = Opener(profile.keys, OPEN_WORKERS)

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
        other_relays: list[str] | None = None,
    ) -> "Messenger":
        """Generate keys, register them with the relay, then write the profile.
        ``other_relays``: the deployment's other relays, tried when ``relay_url`` is away.

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
            other_relays=[u.rstrip("/") for u in other_relays or []],
        )
        profile = create_profile(home, info, keys)
        ledger.attach(profile.ledger_path)
        messenger = cls(profile, ClientSettings(home=home))
        return messenger

    async def aclose(self) -> None:
        await self.api.aclose()
        self.store.close()
        self._opener.close()

    async def __aenter__(self) -> "Messenger":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # --- directory -------------------------------------------------------------------------

    def _pinned(self, handle: str) -> Contact | None:
        """The peer's directory entry if pinned already (no network)."""
        cached = self._contacts.get(handle) or self.store.contact(handle)
        if cached:
            self._contacts[handle] = cached
        return cached

    async def contact(self, handle: str) -> Contact:
        """The peer's directory entry, pinned locally on first use."""
        cached = self._pinned(handle)
        if cached:
            return cached
        contact = _contact_of(await self.api.lookup(handle))
        self._remember(contact)
        return contact

    def _remember(self, contact: Contact) -> None:
        self.store.save_contact(contact)
        self._contacts[contact.handle] = contact

    # --- key changes and safety numbers ----------------------------------------------------

    async def check_contact(self, handle: str) -> Contact:
        """Ask the directory for ``handle``'s keys now: pinned if new, and if they differ from
        the pinned ones, the change is recorded (see :meth:`_compare_keys`), never adopted."""
        self._key_checked[handle] = time.monotonic()
        found = _contact_of(await self.api.lookup(handle))
        if self._pinned(handle) is None:
            self._remember(found)
            return found
        return self._compare_keys(found)

    def _compare_keys(self, found: Contact) -> Contact:
        """The pinned entry of ``found.handle``, with ``found``'s keys recorded as a change
        when they are neither the pinned keys nor a change already recorded."""
        pinned = self._pinned(found.handle)
        assert pinned is not None
        keys = (found.sign_key, found.box_key)
        if keys in ((pinned.sign_key, pinned.box_key), (pinned.new_sign_key, pinned.new_box_key)):
            return pinned
        # The pinned keys stay in use: the new ones wait for the person, who is told. A
        # verification was of the old keys, so it no longer holds.
        changed = _with(
            pinned,
            new_sign_key=found.sign_key,
            new_box_key=found.box_key,
            key_changed_at=now_ms(),
            safety_verified=False,
        )
        self._remember(changed)
        log.warning("@%s's keys changed in the directory; held until accepted", found.handle)
        return changed

    def identity(self) -> Identity:
        """This account's side of every safety number."""
        public = self.profile.keys.public
        return Identity(self.profile.handle, public.sign_b64, public.box_b64)

    def safety_number(self, contact: Contact, *, new: bool = False) -> str:
        """The 60 digits this device and ``contact``'s both show (``new``: with the changed
        keys the contact has pending, which accepting would pin)."""
        if new:
            if contact.new_sign_key is None or contact.new_box_key is None:
                raise ValueError(f"@{contact.handle}'s keys have not changed")
            theirs = Identity(contact.handle, contact.new_sign_key, contact.new_box_key)
        else:
            theirs = Identity(contact.handle, contact.sign_key, contact.box_key)
        return safety_number(self.identity(), theirs)

    def _pinned_or_fail(self, handle: str) -> Contact:
        contact = self._pinned(handle)
        if contact is None:
            raise RelayError(
                0, "not_a_contact", f"No keys pinned for @{handle} yet: nothing to compare."
            )
        return contact

    def mark_verified(self, handle: str, verified: bool = True) -> Contact:
        """Record that the person compared the safety number with ``handle`` (or undo it).
        Refused while a key change waits: the number they compared would be the old one."""
        contact = self._pinned_or_fail(handle)
        if verified and contact.key_changed:
            raise KeyChangedError(handle)
        marked = _with(contact, safety_verified=verified)
        self._remember(marked)
        return marked

    async def accept_new_key(self, handle: str, *, verified: bool = False) -> list[StoredMessage]:
        """Pin ``handle``'s changed keys (the person compared the new safety number, or chose
        to trust it), then release the messages held because of the change. Returns those
        now shown as genuine.

        With no change waiting, only releases what verifies under the pinned keys: a message
        whose template could not be fetched last time is tried again.
        """
        contact = self._pinned_or_fail(handle)
        if contact.key_changed:
            assert contact.new_sign_key is not None and contact.new_box_key is not None
            contact = _with(
                contact,
                sign_key=contact.new_sign_key,
                box_key=contact.new_box_key,
                new_sign_key=None,
                new_box_key=None,
                key_changed_at=None,
                safety_verified=verified,
            )
            self._remember(contact)
        elif verified:
            contact = self.mark_verified(handle)
        return await self._release(contact)

    async def _release(self, contact: Contact) -> list[StoredMessage]:
        """Open again every releasable quarantined message from ``contact`` with its pinned
        keys; those that verify now are stored as genuine (templates rendered as on arrival)."""
        rows = []
        keys: SenderKeys = {contact.handle: (contact.sign_key, contact.box_key)}
        for held in self.store.quarantined_from(contact.handle, RELEASABLE):
            if held.envelope_json is None:
                continue
            envelope = Envelope.model_validate_json(held.envelope_json)
            [(_, outcome)] = self._opener.here([_job(0, envelope)], keys)
            if outcome[0] != "ok":
                continue  # signed by neither key: it stays where it is
            shown = None
            if envelope.kind == "template":
                payload = TemplatePayload.model_validate_json(outcome[1])
                try:
                    shown = await show_template_message(self.api, self.store, envelope, payload)
                except VerificationError as exc:
                    outcome = ("refused", exc.reason, exc.detail, None)
                except (RelayError, RelayUnavailable) as exc:
                    # Its template can't be fetched now: it stays held; accepting again
                    # (with no change waiting) tries it again.
                    log.warning("not released yet, %s: %s", envelope.id, exc)
                    continue
            row = _message_row(envelope, outcome, shown)
            row["received_at"] = held.received_at
            rows.append(row)
        self.store.replace_messages(rows)
        return [stored_message(row) for row in rows if row["status"] == "verified"]

    # --- sending ---------------------------------------------------------------------------

    async def send_text(self, to: str, text: str) -> StoredMessage:
        """Queue a chat message durably, then try to deliver the outbox.

        The message is in the local store before any network I/O; if the relay is down it
        stays queued (status ``queued``) and goes out with the next flush.
        """
        message = self.queue_text(to, text)
        await self.flush_outbox()
        return self.store_message(message.msg_id)

    async def send_quick_reply(self, to: str, text: str) -> StoredMessage:
        """Answer a business with one of its quick-reply buttons: a chat of category
        ``quick_reply``, which the relay delivers but which opens no service window."""
        message = self.queue_text(to, text, category="quick_reply")
        await self.flush_outbox()
        return self.store_message(message.msg_id)

    def queue_text(
        self, to: str, text: str, category: Literal["service", "quick_reply"] = "service"
    ) -> StoredMessage:
        """Store a chat message as ``queued`` without network I/O; :meth:`flush_outbox` sends it.

        Lets an interactive client show the message at once, before the relay answers.
        Raises :class:`KeyChangedError` when ``to``'s key changed and the person has not
        accepted the new one: nothing is stored, so nothing can be sealed to it unasked.
        """
        pinned = self._pinned(to)
        if pinned is not None and pinned.key_changed:
            raise KeyChangedError(to)
        message = StoredMessage(
            msg_id=new_message_id(),
            peer=to,
            direction="out",
            sender=self.profile.handle,
            recipient=to,
            text=text,
            category=category,
            sent_at=now_ms(),
            status="queued",
        )
        # Refuse what could never be sealed now, rather than leave it stuck in the outbox.
        padded_size(len(sign_payload(self._payload(message), self.profile.keys)))
        self.store.queue_outgoing(message, Conversation(peer=to, display_name=to))
        return message

    async def accept_request(self, peer: str) -> Preferences:
        """Accept ``peer``'s message request: the relay stops holding its messages back and
        the conversation joins the others. Returns the person's choices as the relay has them."""
        prefs = await self.api.set_choice("accepted", peer, True)
        self.store.set_accepted(peer, True)
        return prefs

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
        pinned = self.settings.moderation_key_fingerprint
        if not pinned:
            raise RelayError(
                0,
                "desk_not_pinned",
                f"The moderation desk's key is not pinned, so a report could reach whoever "
                f"holds @{desk}. Set SEALPOST_MODERATION_KEY_FINGERPRINT to the fingerprint "
                "your relay's operator publishes.",
            )
        try:
            contact = await self.contact(desk)
        except RelayError as exc:
            if exc.code == "unknown_handle":
                raise RelayError(
                    404, "no_moderation_desk", f"This relay has no moderation desk (@{desk})."
                ) from exc
            raise
        found = key_fingerprint(contact.sign_key, contact.box_key)
        if not hmac.compare_digest(found, pinned.lower()):
            raise RelayError(
                0,
                "desk_key_mismatch",
                f"@{desk}'s key ({found[:16]}...) is not the pinned desk key "
                f"({pinned[:16]}...): nothing was sent. Ask your relay's operator.",
            )
        report = {
            "report": {
                "business": business,
                "messages": [
                    {
                        "id": m.msg_id,
                        "sent_at": m.sent_at,
                        "label": m.label,
                        "text": (m.text or "")[:REPORT_TEXT_CHARS],
                        # A copy the person's choices hid (e.g. a promotion passed off as
                        # utility): the misuse itself, said in the device's words.
                        "hidden": m.quarantine_detail
                        if m.quarantine_reason == HIDDEN_BY_CHOICE
                        else None,
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
        message = self.store_message(entry.msg_id)
        keys = PublicKeys.from_b64(contact.sign_key, contact.box_key)
        return seal_envelope(
            self._payload(message), self.profile.keys, keys.box, category=message.category
        )

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
                    if contact.key_changed:
                        # Queued before the change was known: it waits, unsealed, for the
                        # person to accept the new key (then it goes out sealed to it).
                        report.held.append(entry.msg_id)
                        continue
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
        stored, _ = await self._finish(await self._begin([item]))
        return stored_message(stored[0]) if stored else None

    async def _begin(self, items: list[MailboxItem]) -> "_Arrival":
        """First half of receiving ``items``: skip what is stored already and start opening
        the rest (in worker processes when there are many).

        Nothing here waits for the relay: senders not pinned yet, and templates not cached
        yet, are looked up in the background while the others are opened. :meth:`_finish`
        stores the batch; in between, the caller may finish an earlier batch, so that this
        process's work overlaps with the opening.
        """
        seen = self.store.stored_ids(item.envelope.id for item in items)
        fresh: list[Envelope] = []
        for item in items:
            if item.envelope.id not in seen:
                seen.add(item.envelope.id)
                fresh.append(item.envelope)
        arrival = _Arrival(items, fresh)
        unknown = []
        for sender in dict.fromkeys(envelope.sender for envelope in fresh):
            contact = self._pinned(sender)
            if contact is None:
                unknown.append(sender)
            else:
                arrival.contacts[sender] = contact
        if unknown:
            arrival.looking_up = asyncio.ensure_future(self._look_up(unknown))
        for template_id in {e.template_id for e in fresh if e.template_id}:
            if self.store.template(template_id) is None:
                arrival.fetching.append(
                    asyncio.ensure_future(prefetch_template(self.api, self.store, template_id))
                )
        self._open(arrival, [i for i, e in enumerate(fresh) if e.sender in arrival.contacts])
        return arrival

    def _open(self, arrival: "_Arrival", indices: list[int]) -> None:
        """Start opening these envelopes of ``arrival``, whose senders' keys are known now."""
        elsewhere = len(indices) >= PARALLEL_OPEN_MIN and OPEN_WORKERS > 1
        size = OPEN_CHUNK if elsewhere else max(1, len(indices))
        for start in range(0, len(indices), size):
            jobs: list[Job] = []
            keys: SenderKeys = {}
            for index in indices[start : start + size]:
                envelope = arrival.fresh[index]
                contact = arrival.contacts[envelope.sender]
                if isinstance(contact, RelayError):
                    arrival.outcomes[index] = ("refused", "unknown_sender", contact.message, None)
                elif envelope.recipient != self.profile.handle:
                    detail = f"addressed to {envelope.recipient}, not to this account"
                    arrival.outcomes[index] = ("refused", "recipient_mismatch", detail, None)
                else:
                    keys[contact.handle] = (contact.sign_key, contact.box_key)
                    jobs.append(
                        (
                            index,
                            envelope.id,
                            envelope.sender,
                            envelope.recipient,
                            envelope.kind,
                            envelope.ciphertext,
                        )
                    )
            if elsewhere:
                arrival.opening.append((jobs, keys, self._opener.elsewhere(jobs, keys)))
            else:
                for index, outcome in self._opener.here(jobs, keys):
                    arrival.outcomes[index] = outcome

    async def _look_up(self, senders: list[str]) -> dict[str, "Contact | RelayError"]:
        """Pin the directory keys of ``senders``; an unknown handle is kept as its error."""
        if len(senders) > 1:
            return await self._look_up_together(senders)
        found = await asyncio.gather(*(self.contact(s) for s in senders), return_exceptions=True)
        contacts: dict[str, Contact | RelayError] = {}
        for sender, contact in zip(senders, found, strict=True):
            if isinstance(contact, RelayError) and contact.code == "unknown_handle":
                contacts[sender] = contact
            elif isinstance(contact, BaseException):
                raise contact  # can't check it now (rate limit, relay trouble): leave it unacked
            else:
                contacts[sender] = contact
        return contacts

    async def _look_up_together(self, senders: list[str]) -> dict[str, "Contact | RelayError"]:
        """Several senders in one directory request (a page from many businesses)."""
        contacts: dict[str, Contact | RelayError] = {}
        for start in range(0, len(senders), MAX_BATCH_ENVELOPES):
            found = await self.api.lookup_many(senders[start : start + MAX_BATCH_ENVELOPES])
            for info in found.accounts:
                contact = _contact_of(info)
                self.store.save_contact(contact)
                self._contacts[contact.handle] = contact
                contacts[contact.handle] = contact
            for handle in found.unknown:
                message = f"No account '{handle}' on this relay."
                contacts[handle] = RelayError(404, "unknown_handle", message)
        missing = [s for s in senders if s not in contacts]
        if missing:  # a relay that answered for fewer handles than asked: not to be trusted
            raise RelayError(502, "lookup_incomplete", f"No answer for {', '.join(missing)}")
        return contacts

    async def _finish(self, arrival: "_Arrival") -> tuple[list[dict[str, Any]], int]:
        """Second half of receiving: render, then store everything in one transaction.

        Returns the newly stored messages' rows, in order, and how many were stored already.
        Never drops a message: one that fails a check is stored quarantined. One that cannot
        be checked now (rate limit, relay trouble) raises, and then nothing of the batch is
        stored, so nothing of it is acked either: it all comes again.
        """
        rows = []
        conversations: dict[str, Conversation] = {}
        try:
            looked_up: dict[str, Contact | RelayError] = {}
            if arrival.looking_up is not None:
                looked_up = await arrival.looking_up
                arrival.contacts.update(looked_up)
                fresh = arrival.fresh
                self._open(arrival, [i for i, e in enumerate(fresh) if e.sender in looked_up])
            for jobs, keys, opening in arrival.opening:
                try:
                    outcomes = await opening
                except BrokenProcessPool:  # a worker died (killed, out of memory): do it here
                    self._opener.close()
                    outcomes = self._opener.here(jobs, keys)
                for index, opened in outcomes:
                    arrival.outcomes[index] = opened
            await self._hold_key_changes(arrival, set(looked_up))
            await asyncio.gather(*arrival.fetching)  # never raise: rendering reports problems
            for envelope, outcome in zip(arrival.fresh, arrival.outcomes, strict=True):
                assert outcome is not None
                peer = envelope.sender
                if peer not in conversations:
                    conversations[peer] = _conversation(peer, arrival.contacts[peer])
                shown = None
                if outcome[0] == "ok" and envelope.kind == "template":
                    payload = TemplatePayload.model_validate_json(outcome[1])
                    try:
                        shown = await show_template_message(self.api, self.store, envelope, payload)
                    except VerificationError as exc:
                        outcome = ("refused", exc.reason, exc.detail, None)
                    except RelayError as exc:
                        if exc.code != "unknown_handle":
                            raise  # the registry can't be asked now: leave it unacked
                        outcome = ("refused", "unknown_sender", exc.message, None)
                rows.append(_message_row(envelope, outcome, shown))
        except BaseException:
            arrival.cancel()
            raise
        stored = self.store.add_incoming_rows(rows, conversations)
        return stored, len(arrival.items) - len(stored)

    async def _hold_key_changes(self, arrival: "_Arrival", pinned_now: set[str]) -> None:
        """Quarantine as ``key_changed`` what a pinned contact's new key signed.

        A message from a pinned contact that fails its signature check may be signed by keys
        the directory now gives for them (a new device, or a relay swapping keys to read or
        forge messages). It is opened again with those keys; if they verify it, it is held as
        ``key_changed`` (never shown as genuine) and the change recorded on the contact, so the
        person is told and can compare safety numbers before accepting. The directory is asked
        only when no change already recorded explains it (``pinned_now``: senders pinned by
        this very arrival, whose keys are as fresh as can be).
        """
        suspects: dict[str, list[int]] = {}
        for index, (envelope, outcome) in enumerate(
            zip(arrival.fresh, arrival.outcomes, strict=True)
        ):
            if (
                outcome is not None
                and outcome[:2] == ("refused", "bad_signature")
                and isinstance(arrival.contacts.get(envelope.sender), Contact)
                and envelope.sender not in pinned_now
            ):
                suspects.setdefault(envelope.sender, []).append(index)
        for sender, indices in suspects.items():
            contact = self._pinned(sender)
            if contact is None:
                continue
            held = self._signed_by_new_key(arrival, indices, contact)
            rest = [i for i in indices if i not in held]
            checked = self._key_checked.get(sender)
            if rest and (checked is None or time.monotonic() - checked >= KEY_RECHECK_S):
                try:
                    contact = await self.check_contact(sender)
                except RelayError as exc:
                    if exc.code != "unknown_handle":
                        raise  # can't check it now: the batch comes again (nothing acked)
                    continue  # gone from the directory: it stays badly signed
                held += self._signed_by_new_key(arrival, rest, contact)
            detail = (
                f"signed by a new key for @{sender}: their safety number changed. Compare it, "
                "then accept the new key to read this message."
            )
            for index in held:
                arrival.outcomes[index] = ("refused", "key_changed", detail, None)

    def _signed_by_new_key(
        self, arrival: "_Arrival", indices: list[int], contact: Contact
    ) -> list[int]:
        """Those of ``indices`` that ``contact``'s changed (not accepted) keys verify."""
        if contact.new_sign_key is None or contact.new_box_key is None:
            return []
        keys: SenderKeys = {contact.handle: (contact.new_sign_key, contact.new_box_key)}
        jobs = [_job(index, arrival.fresh[index]) for index in indices]
        return [index for index, outcome in self._opener.here(jobs, keys) if outcome[0] == "ok"]

    async def _ack(
        self, items: list[MailboxItem], stored: Sequence[StoredMessage | dict[str, Any]]
    ) -> None:
        """Ack what the store has committed, then ask for signal tokens for campaign copies
        (``stored``: the new messages among ``items``, or their rows)."""
        if not items:
            return
        # Ack only after the store committed: a crash before this line means redelivery,
        # which the store ignores; never a loss.
        ids = [i.envelope.id for i in items]
        for start in range(0, len(ids), MAX_BATCH_ENVELOPES):
            await self.api.ack(ids[start : start + MAX_BATCH_ENVELOPES])
        campaign_of = {i.envelope.id: (i.envelope.campaign_id, i.envelope.sender) for i in items}
        copies: dict[str, tuple[str, str]] = {}  # campaign -> its first verified copy, sender
        for message in stored:
            msg_id, status, kind = (
                (message["msg_id"], message["status"], message["kind"])
                if isinstance(message, dict)
                else (message.msg_id, message.status, message.kind)
            )
            campaign_id, business = campaign_of.get(msg_id, (None, ""))
            if status == "verified" and kind == "template" and campaign_id:
                copies.setdefault(campaign_id, (msg_id, business))
        # One report per campaign: later copies need no token. One request for them all; if
        # the relay refuses it, each on its own, so that one bad copy costs only its token.
        wanted = [
            (msg_id, campaign_id, business) for campaign_id, (msg_id, business) in copies.items()
        ]
        for start in range(0, len(wanted), MAX_TOKEN_BATCH):
            chunk = wanted[start : start + MAX_TOKEN_BATCH]
            try:
                await self.signals.on_delivered_many(chunk)
                continue
            except RelayError as exc:
                if len(chunk) == 1 or exc.transient:
                    log.warning("no signal tokens for %s: %s", [c for _, c, _ in chunk], exc)
                    continue
            except (RelayUnavailable, TokenError) as exc:
                # No token, no report for these campaigns: a gap in the statistics, never a
                # reason to hold up the person's messages.
                log.warning("no signal tokens for %s: %s", [c for _, c, _ in chunk], exc)
                continue
            for msg_id, campaign_id, business in chunk:
                try:
                    await self.signals.on_delivered(msg_id, campaign_id, business)
                except (RelayError, RelayUnavailable, TokenError) as exc:
                    log.warning("no signal token for %s: %s", campaign_id, exc)

    async def sync(self) -> SyncReport:
        """Fetch every pending envelope, store it exactly once, and ack it.

        Pipelined, so that the relay, the opening processes and this one all work at once:
        while page N is rendered and stored, page N+1 is being opened, page N+2 fetched and
        page N-1 acked. A page's ack still leaves only once the page is committed to the
        store, so a crash at any point loses nothing.
        """
        report = SyncReport()
        asked = FIRST_SYNC_PAGE
        fetch: asyncio.Task[MailboxPage] | None = asyncio.create_task(
            self.api.mailbox_page(after=0, limit=asked)
        )
        opened: _Arrival | None = None  # the page being opened
        acking: asyncio.Task[None] | None = None
        try:
            while True:
                page = await fetch if fetch is not None else None
                fetch = None
                arrival = None
                if page is not None and page.items:
                    # A page shorter than asked for drained the mailbox: don't ask again
                    # (anything newer comes on the stream, or at the next sync).
                    if len(page.items) >= asked:
                        asked = SYNC_PAGE
                        fetch = asyncio.create_task(
                            self.api.mailbox_page(after=page.next_after, limit=asked)
                        )
                        await _let_requests_out()
                    arrival = await self._begin(page.items)
                if opened is not None:
                    stored, duplicates = await self._finish(opened)
                    report.rows += stored
                    report.duplicates += duplicates
                    if acking is not None:
                        await acking  # one ack in flight at a time; a failed one ends the sync
                    acking = asyncio.create_task(self._ack(opened.items, stored))
                    await _let_requests_out()
                opened = arrival
                if opened is None:
                    break
            if acking is not None:
                await acking
        except BaseException:
            if fetch is not None:
                fetch.cancel()
                await asyncio.gather(fetch, return_exceptions=True)
            if opened is not None:
                opened.cancel()
            if acking is not None and not acking.done():
                # Its page is committed: let the ack go out (if it fails, the page simply
                # comes again next time and the store ignores it).
                await asyncio.gather(acking, return_exceptions=True)
            raise
        return report

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
        # Online only once the relay says the stream is open (its ``event: ready``): before
        # that, a message sent to this account would not arrive live, and a UI told "online"
        # too early showed a state that was not yet true.
        announce = functools.partial(on_event, ConnectionChanged(online=True))
        # Each envelope is stored and shown at once; acks go out in batches (ack_delay_s after
        # the first unacked one, or every ACK_BATCH), never one request per message. Late
        # acks cost nothing but a redelivery after a reconnect, which the store ignores;
        # early ones cost the relay a signed request each, its dearest per-message work.
        unacked: list[MailboxItem] = []
        stored: list[StoredMessage] = []

        async def ack_now() -> None:
            items, done = unacked[:], stored[:]
            unacked.clear()
            stored.clear()
            await self._ack(items, done)

        async def ack_later() -> None:
            # Round again while envelopes keep coming: one that arrives while this ack is on
            # the wire finds this task still running and starts no acker of its own.
            while unacked:
                await asyncio.sleep(self.settings.ack_delay_s)
                with contextlib.suppress(RelayError, RelayUnavailable):  # redelivered later
                    await ack_now()

        acker: asyncio.Task[None] | None = None
        # Envelopes are read off the stream as they come and received in batches of whatever
        # arrived meanwhile: one that needs the directory (a sender seen for the first time)
        # costs a round trip, and a business that a hundred new customers write to at once
        # would otherwise wait for a hundred lookups one after another instead of one.
        arrived: asyncio.Queue[MailboxItem | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for item in self.api.stream(on_ready=announce):
                    arrived.put_nowait(item)
            finally:
                arrived.put_nowait(None)  # the stream ended (or failed: see below)

        reader = asyncio.create_task(read())
        try:
            ended = False
            while not ended:
                first = await arrived.get()
                if first is None:
                    break
                batch = [first]
                while not arrived.empty() and len(batch) < ACK_BATCH:
                    item = arrived.get_nowait()
                    if item is None:
                        ended = True
                        break
                    batch.append(item)
                rows, _ = await self._finish(await self._begin(batch))
                progress.advanced = True
                unacked.extend(batch)
                for row in rows:
                    message = stored_message(row)
                    stored.append(message)
                    on_event(MessageStored(message))
                if len(unacked) >= ACK_BATCH:
                    await ack_now()
                elif acker is None or acker.done():
                    acker = asyncio.create_task(ack_later())
            await reader  # the stream's own end, or its error (RelayUnavailable, ...)
        finally:
            if not reader.done():
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            if acker is not None and not acker.done():
                acker.cancel()
            if unacked:
                # Best effort on the way out; anything unacked is simply delivered again.
                with contextlib.suppress(RelayError, RelayUnavailable):
                    await asyncio.shield(ack_now())


async def _let_requests_out() -> None:
    """Let just-created request tasks write their requests before this thread gets busy:
    a task starts only when the loop runs, which a long stretch of work would delay, and the
    relay could be working on the request meanwhile."""
    for _ in range(3):
        await asyncio.sleep(0)


@dataclass
class _StreamProgress:
    advanced: bool = False  # something arrived since the last (re)connect


@dataclass
class _Arrival:
    """Received envelopes between :meth:`Messenger._begin` and :meth:`Messenger._finish`."""

    items: list[MailboxItem]
    fresh: list[Envelope]  # not stored yet, each id once
    contacts: dict[str, Contact | RelayError] = field(default_factory=dict)
    outcomes: list[Outcome | None] = field(default_factory=list)  # per envelope of ``fresh``
    # Jobs sent to the worker processes, with the future of their outcomes.
    opening: list[tuple[list[Job], SenderKeys, "asyncio.Future[list[tuple[int, Outcome]]]"]] = (
        field(default_factory=list)
    )
    looking_up: "asyncio.Future[dict[str, Contact | RelayError]] | None" = None
    fetching: list["asyncio.Future[None]"] = field(default_factory=list)  # templates

    def __post_init__(self) -> None:
        self.outcomes = [None] * len(self.fresh)

    def cancel(self) -> None:
        for task in [*(o for _, _, o in self.opening), *self.fetching, self.looking_up]:
            if task is not None:
                task.cancel()


def _job(index: int, envelope: Envelope) -> Job:
    return (
        index,
        envelope.id,
        envelope.sender,
        envelope.recipient,
        envelope.kind,
        envelope.ciphertext,
    )


def _with(contact: Contact, **changes: Any) -> Contact:
    """A copy of ``contact`` with ``changes`` (a new object: the old one may be in use)."""
    return Contact(**{**contact.model_dump(), **changes})


def _contact_of(info: AccountInfo) -> Contact:
    return Contact(
        handle=info.handle,
        kind=info.kind,
        # The relay is not trusted to have refused a bad name (it may predate the rules, or
        # lie): a name that could impersonate or inject is never pinned, the handle stands in.
        display_name=name_or_handle(info.display_name, info.handle),
        verified=info.verified,
        sign_key=info.sign_key,
        box_key=info.box_key,
    )


def _conversation(peer: str, contact: Contact | RelayError) -> Conversation:
    """A new conversation with ``peer``, named as its pinned directory entry says."""
    if isinstance(contact, RelayError):
        return Conversation(peer=peer, display_name=peer)
    return Conversation(
        peer=contact.handle,
        display_name=contact.display_name,
        kind=contact.kind,
        verified=contact.verified,
    )


def _message_row(
    envelope: Envelope, outcome: Outcome, shown: ShownTemplate | None
) -> dict[str, Any]:
    """The store row of a received envelope: verified with its text, or quarantined whole."""
    received_at = now_ms()
    status, *found = outcome
    base: dict[str, Any] = dict(
        msg_id=envelope.id,
        peer=envelope.sender,
        direction="in",
        sender=envelope.sender,
        recipient=envelope.recipient,
        kind=envelope.kind,
        category=envelope.category,
        received_at=received_at,
        campaign_id=envelope.campaign_id,
    )
    if status != "ok":
        reason, detail, _ = found
        return message_row(
            **base,
            sent_at=received_at,
            status="quarantined",
            quarantine_reason=reason,
            quarantine_detail=detail,
            envelope_json=envelope.model_dump_json(),
        )
    payload_json, sent_at, text = found
    return message_row(
        **base,
        sent_at=sent_at,
        status="verified",
        text=shown.text if shown else text,
        label=shown.label if shown else None,
        payload_json=payload_json,
        rendered_json=shown.rendered.model_dump_json() if shown else None,
    )
