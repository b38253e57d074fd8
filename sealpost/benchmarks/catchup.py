"""Client catch-up: a person who was offline opens the client to N sealed messages waiting.

Set-up, not measured: a relay in its own process, persons with fresh profiles, and for each
N sealed envelopes in their mailbox from a few senders, submitted in batches over HTTP as the
senders' clients would: chat texts from four persons and, every hundredth message, a template
message from one of two businesses (marketing and utility). A campaign sends one copy per
person (the relay refuses a second), so every template message a reader gets comes from a
campaign of its own, as for a person who was away while many campaigns went out; the readers
share those campaigns. One in a hundred is what a month away looks like: the marketing cap
lets through two a day, and utility messages are rarer still.

Measured: ``Messenger.sync()`` on a freshly opened client (the path of ``sealpost inbox``): page
through the mailbox, look up and pin the senders' keys, open and verify every envelope, render
the template messages against the registry, store everything locally, ack, and get the
campaigns' signal tokens, until all N are in the local store and the mailbox is empty.

Floor, in the same run: open and verify the same N envelopes (``shared.seal.open_envelope``
with the senders' keys, already parsed) in a tight single-threaded loop, plus the client's
side of one signal token per campaign (``shared.tokens``: blind, then verify the issuer's
proof, unblind and hash), nothing else. With a campaign per template message that is N/100
tokens: a floor without them would charge the client for work no client can skip. Both parts
are reported.

Both are the median of three (three readers, each with their own N waiting), so that one
hiccup on a shared machine does not decide the verdict; every run is in the result.
"""

import asyncio
import gc
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.public import PublicKey

from client.messenger import Messenger
from sealpost.audit.fleet import gather_chunks
from sealpost.relay_process import RelayProcess
from shared.api import CampaignCreate, TemplateInfo
from shared.envelope import (
    ChatContent,
    ChatPayload,
    Envelope,
    TemplateContent,
    TemplatePayload,
)
from shared.identifiers import new_message_id
from shared.keys import AccountKeys, PublicKeys
from shared.seal import open_envelope, seal_envelope
from shared.templates import TemplateDraft
from shared.tokens import IssuerKey, blind, evaluate, finalize, new_token_input
from shared.version import MAX_BATCH_ENVELOPES

TARGET_RATIO = 1.5
PERSONS = 4  # chat senders
TEMPLATE_EVERY = 100  # every hundredth message is a template message, each its own campaign
CREATE_CONCURRENCY = 20  # campaigns created at once while setting up
READER = "reader"

TEMPLATES = (
    (
        "benchshop",
        TemplateDraft(
            name="bench_offer",
            category="marketing",
            body="Hi {{name}}, your code {{code}} takes 20% off until Sunday.",
            examples={"name": "Ana", "code": "SPRING20"},
        ),
    ),
    (
        "benchpost",
        TemplateDraft(
            name="bench_parcel",
            category="utility",
            body="Hi {{name}}, parcel {{code}} arrives tomorrow between 9 and 12.",
            examples={"name": "Ana", "code": "PX1234"},
        ),
    ),
)


class _Sender:
    def __init__(self, messenger: Messenger, template: TemplateInfo | None = None) -> None:
        self.messenger = messenger
        self.handle = messenger.profile.handle
        self.keys: AccountKeys = messenger.profile.keys
        self.template = template
        # A business's campaigns, in the order its template messages use them: the k-th
        # template message a reader gets from this business is a copy of campaign k.
        self.campaign_ids: list[str] = []
        self.envelopes: list[Envelope] = []


async def _senders(url: str, home: Path, messages: int, readers: int) -> list[_Sender]:
    senders = []
    for i in range(PERSONS):
        person = await Messenger.create_account(
            home, f"p{i}", f"benchfriend{i}", url, country="+39"
        )
        senders.append(_Sender(person))
    per_reader = messages // TEMPLATE_EVERY  # template messages each reader gets
    for s, (handle, draft) in enumerate(TEMPLATES):
        shop = await Messenger.create_account(home, handle, handle, url, business=True)
        await shop.api.top_up(10**12)
        sender = _Sender(shop, await shop.api.register_template(draft))
        template_id = sender.template.id  # type: ignore[union-attr]
        # The businesses take turns, so this one sends every len(TEMPLATES)-th of them.
        wanted = len(range(s, per_reader, len(TEMPLATES)))
        created = await gather_chunks(
            [
                shop.api.create_campaign(
                    CampaignCreate(
                        template_id=template_id,
                        name=f"catch-up bench {k}",
                        budget=10**12,
                        audience_size=readers,
                    )
                )
                for k in range(wanted)
            ],
            CREATE_CONCURRENCY,
        )
        sender.campaign_ids = [campaign.id for campaign in created]
        senders.append(sender)
    return senders


def _seal_all(senders: list[_Sender], reader: str, box: PublicKey, messages: int, t0: int) -> None:
    """Seal ``messages`` envelopes to ``reader``, spread over the senders."""
    persons = [s for s in senders if s.template is None]
    shops = [s for s in senders if s.template is not None]
    for n in range(messages):
        sent_at = t0 + n
        if n % TEMPLATE_EVERY == TEMPLATE_EVERY - 1 and shops:
            turn = n // TEMPLATE_EVERY
            shop = shops[turn % len(shops)]
            template = shop.template
            assert template is not None
            campaign_id = shop.campaign_ids[turn // len(shops)]
            payload: ChatPayload | TemplatePayload = TemplatePayload(
                id=new_message_id(),
                sender=shop.handle,
                recipient=reader,
                sent_at=sent_at,
                content=TemplateContent(
                    template_id=template.id,
                    template_hash=template.hash,
                    variables={"name": "Reader", "code": f"C{n:06d}"},
                    campaign_id=campaign_id,
                ),
            )
            shop.envelopes.append(
                seal_envelope(
                    payload,
                    shop.keys,
                    box,
                    category=template.template.category,
                    template_id=template.id,
                    campaign_id=campaign_id,
                )
            )
        else:
            person = persons[n % len(persons)]
            payload = ChatPayload(
                id=new_message_id(),
                sender=person.handle,
                recipient=reader,
                sent_at=sent_at,
                content=ChatContent(text=f"message {n}: " + "see you at eight " * (n % 5)),
            )
            person.envelopes.append(seal_envelope(payload, person.keys, box))


async def _submit(senders: list[_Sender]) -> None:
    """Every sender's envelopes in batches, the senders taking turns (so the mailbox mixes)."""
    size = MAX_BATCH_ENVELOPES // 2
    rounds = max(len(s.envelopes) for s in senders)
    for start in range(0, rounds, size):
        for sender in senders:
            chunk = sender.envelopes[start : start + size]
            if not chunk:
                continue
            answer = await sender.messenger.api.send_batch_json(
                [e.model_dump_json() for e in chunk]
            )
            if answer.accepted != len(chunk):
                refused = {r.error.code for r in answer.results if r.error}
                raise RuntimeError(f"{sender.handle}: batch refused: {refused}")


@dataclass
class _Floor:
    open_s: float  # open+verify of every envelope
    tokens_s: float  # the client's side of one signal token per campaign

    @property
    def total_s(self) -> float:
        return self.open_s + self.tokens_s


def _floor(sealed: list[str], me: AccountKeys, pinned: dict[str, tuple[str, str]]) -> _Floor:
    """Single-threaded open+verify of the same envelopes, and the client's token crypto for
    their campaigns (blind, then verify the issuer's proof, unblind and hash), nothing else:
    the envelopes are parsed, the senders' keys loaded and the issuer's answers computed
    before the clock starts. The tokens belong in the floor since every template message is
    a campaign of its own (one copy per person per campaign), each with its own token."""
    envelopes = [Envelope.model_validate_json(e) for e in sealed]
    keys = {handle: PublicKeys.from_b64(*both) for handle, both in pinned.items()}
    start = time.perf_counter()
    for envelope in envelopes:
        open_envelope(envelope, me, keys[envelope.sender])
    open_s = time.perf_counter() - start
    campaigns = sorted({e.campaign_id for e in envelopes if e.campaign_id})
    issuers = [IssuerKey.generate() for _ in campaigns]
    inputs = [new_token_input() for _ in campaigns]
    start = time.perf_counter()
    blinded = [blind(token_input) for token_input in inputs]
    blind_s = time.perf_counter() - start
    answers = [evaluate(key, [element]) for key, (_, element) in zip(issuers, blinded, strict=True)]
    start = time.perf_counter()
    for token_input, (scalar, element), ([evaluated], proof), key in zip(
        inputs, blinded, answers, issuers, strict=True
    ):
        finalize(token_input, scalar, element, evaluated, proof, key.public_key)
    return _Floor(open_s=open_s, tokens_s=blind_s + time.perf_counter() - start)


@dataclass
class _Mailbox:
    handle: str
    keys: AccountKeys
    sealed: list[str]  # its envelopes as JSON, for the floor


async def _fill(
    url: str, home: Path, messages: int, readers: int
) -> tuple[list[_Mailbox], dict[str, tuple[str, str]]]:
    """``readers`` persons with fresh profiles, each with ``messages`` waiting for them; and
    the senders' public keys (base64), as the readers will pin them."""
    mailboxes = []
    for r in range(readers):
        handle = f"{READER}{r}"
        reader = await Messenger.create_account(home, handle, handle, url, country="+39")
        mailboxes.append(_Mailbox(handle, reader.profile.keys, []))
        await reader.aclose()
    senders = await _senders(url, home, messages, readers)
    try:
        for box in mailboxes:
            _seal_all(senders, box.handle, box.keys.public.box, messages, int(time.time() * 1000))
            await _submit(senders)
            # Only the bytes are kept, for the floor: the senders' objects are not the
            # reader's, and would only give its garbage collector more to scan.
            box.sealed = [e.model_dump_json() for s in senders for e in s.envelopes]
            for sender in senders:
                sender.envelopes.clear()
    finally:
        for sender in senders:
            await sender.messenger.aclose()
    return mailboxes, {s.handle: (s.keys.public.sign_b64, s.keys.public.box_b64) for s in senders}


async def _catch_up(home: Path, handle: str, messages: int) -> dict[str, Any]:
    """The measured part: ``handle``'s app opening after being offline, until all is in."""
    gc.collect()
    client = Messenger.open(home, handle)
    try:
        start = time.perf_counter()
        report = await client.sync()
        wall_s = time.perf_counter() - start
        stored = client.store.messages()
        left = (await client.api.mailbox_page(limit=1)).items
    finally:
        await client.aclose()
    verified = sum(m.status == "verified" for m in stored)
    if len(report.stored) != messages or verified != messages or left:
        raise RuntimeError(
            f"catch-up stored {len(report.stored)} ({verified} verified) of {messages}; "
            f"{'some' if left else 'none'} left in the mailbox"
        )
    return {
        "wall_s": wall_s,
        "stored": len(stored),
        "templates": sum(m.kind == "template" for m in stored),
    }


def catchup(messages: int = 10_000, repeat: int = 3) -> dict[str, Any]:
    """Median of ``repeat`` catch-ups (one reader each, all filled first) and of as many
    floors, so that a hiccup on a shared machine does not decide the verdict."""
    with tempfile.TemporaryDirectory(prefix="sealpost-bench-") as tmp:
        home = Path(tmp) / "home"
        with RelayProcess(
            f"sqlite:///{tmp}/relay.db",
            Path(tmp) / "relay.log",
            rate_burst="100000",
            rate_per_s="100000",
            # One sender fills one mailbox with 10,000 messages: lift the per-sender limits.
            chat_burst="100000",
            chat_rate_per_s="100000",
            chats_per_recipient_per_hour="1000000",
            chat_bytes_per_recipient_per_hour="10000000000",
            marketing_cap_24h="10000000",
            request_hold="10000000",  # the one sender stands for the person's contacts
            registrations_per_hour="0",
            anonymous_per_s="0",
            max_requests_in_flight_per_address="0",
            auto_migrate="true",
        ) as relay:

            async def go() -> tuple[list[_Mailbox], dict[str, Any], list[dict[str, Any]]]:
                mailboxes, pinned = await _fill(relay.url, home, messages, repeat)
                runs = [await _catch_up(home, b.handle, messages) for b in mailboxes]
                return mailboxes, pinned, runs

            mailboxes, pinned, runs = asyncio.run(go())
    floors = [_floor(box.sealed, box.keys, pinned) for box in mailboxes]
    timing = {
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "floor_s": statistics.median(f.total_s for f in floors),
        "floor_open_s": statistics.median(f.open_s for f in floors),
        "floor_tokens_s": statistics.median(f.tokens_s for f in floors),
        "stored": runs[0]["stored"],
        "templates": runs[0]["templates"],
    }
    ratio = timing["wall_s"] / timing["floor_s"]
    return {
        "name": "client_catchup",
        "what": f"a client opening to {messages} sealed messages (from {PERSONS} persons and "
        f"{len(TEMPLATES)} businesses, each template message from a campaign of its own): "
        "fetch, open, verify, store, ack, get the campaigns' signal tokens (relay in its own "
        "process)",
        "floor": "single-threaded open+verify of the same envelopes, and the client's side "
        "of one signal token per campaign (blind, verify the proof, unblind, hash)",
        "messages": messages,
        "template_messages": timing["templates"],
        "stored": timing["stored"],
        "wall_s": round(timing["wall_s"], 3),
        "floor_s": round(timing["floor_s"], 3),
        "floor_open_s": round(timing["floor_open_s"], 3),
        "floor_tokens_s": round(timing["floor_tokens_s"], 3),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "runs": repeat,
        "wall_runs_s": [round(r["wall_s"], 3) for r in runs],
        "floor_runs_s": [round(f.total_s, 3) for f in floors],
        "messages_per_s": round(messages / timing["wall_s"]),
        "floor_messages_per_s": round(messages / timing["floor_s"]),
        "ok": ratio <= TARGET_RATIO,
    }
