"""Hostile input against a real relay on loopback: forged, tampered, replayed and oversize
envelopes, broken requests, forged auth, other people's mailboxes and request floods.

Every case checks the exact refusal (HTTP status and error code) or the exact quarantine reason,
and that nothing else is lost: a genuine message sent alongside still arrives and is verified.
"""

import asyncio
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import httpx
import pytest
from nacl.public import PublicKey, SealedBox

import client.messenger
from client.messenger import Messenger, now_ms
from client.store import StoredMessage
from server.embedded import EmbeddedRelay
from shared.auth import sign_request
from shared.encoding import b64encode
from shared.envelope import ChatContent, ChatPayload, Envelope
from shared.identifiers import new_message_id
from shared.keys import AccountKeys
from shared.seal import SIGNING_CONTEXT, pad, seal_envelope, sign_payload
from shared.version import MAX_CIPHERTEXT_BYTES, MIN_CIPHERTEXT_BYTES, SEAL_OVERHEAD_BYTES
from tests.conftest import relay_settings
from tests.helpers import assert_error, legacy_account, sealpost, signed

# --- helpers -------------------------------------------------------------------------------


def chat(sender: str, recipient: str, text: str, **fields: Any) -> ChatPayload:
    values: dict[str, Any] = {
        "id": new_message_id(),
        "sender": sender,
        "recipient": recipient,
        "sent_at": now_ms(),
        "content": ChatContent(text=text),
    }
    return ChatPayload(**{**values, **fields})


def box_of(person: Messenger) -> PublicKey:
    return person.profile.keys.public.box


def sealed_to(person: Messenger, plaintext: bytes) -> str:
    """base64 of ``plaintext`` sealed to ``person`` (no signature, no padding added)."""
    return b64encode(SealedBox(box_of(person)).encrypt(plaintext))


def wire(envelope: Envelope | dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = envelope.model_dump(mode="json") if isinstance(envelope, Envelope) else dict(envelope)
    return {**data, **changes}


def post(
    relay: EmbeddedRelay, poster: Messenger, path: str, body: Any, keys: AccountKeys | None = None
) -> httpx.Response:
    """POST signed as ``poster`` (with ``keys`` instead of the poster's own, if given)."""
    return signed(relay.url, keys or poster.profile.keys, poster.profile.handle, "POST", path, body)


def get(relay: EmbeddedRelay, who: Messenger, path: str) -> httpx.Response:
    return signed(relay.url, who.profile.keys, who.profile.handle, "GET", path)


def accepted(response: httpx.Response, msg_id: str) -> None:
    assert response.status_code == 202, response.text
    assert response.json() == {"id": msg_id, "status": "accepted", "error": None}


async def sync_all(person: Messenger) -> dict[str, StoredMessage]:
    """Sync ``person``; what got stored, by id. Nothing may stay pending on the relay."""
    report = await person.sync()
    assert (await person.api.mailbox_page()).items == []
    return {m.msg_id: m for m in report.stored}


def assert_verified(message: StoredMessage, sender: str, text: str) -> None:
    assert (message.status, message.sender, message.text, message.quarantine_reason) == (
        "verified",
        sender,
        text,
        None,
    )


def assert_quarantined(message: StoredMessage, sender: str, reason: str) -> None:
    assert (message.status, message.sender, message.quarantine_reason) == (
        "quarantined",
        sender,
        reason,
    ), message.quarantine_detail
    assert message.text is None and message.payload_json is None
    assert message.envelope_json  # kept for inspection, never shown as genuine


def registration(handle: str, keys: AccountKeys, **fields: Any) -> dict[str, Any]:
    return {
        "handle": handle,
        "display_name": handle,
        "country": "+39",
        "sign_key": keys.public.sign_b64,
        "box_key": keys.public.box_b64,
        **fields,
    }


@pytest.fixture
def small_body_relay(sqlite_url: str) -> Iterator[EmbeddedRelay]:
    with EmbeddedRelay(relay_settings(sqlite_url, max_body_bytes=4096)) as running:
        yield running


# --- 1. tampered ciphertext ----------------------------------------------------------------


async def test_tampered_ciphertext_is_quarantined_and_the_rest_verified(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    before = await alice.send_text("bob", "before the tampering")

    envelope = seal_envelope(chat("alice", "bob", "tamper me"), alice.profile.keys, box_of(bob))
    raw = bytearray(envelope.ciphertext_bytes())
    raw[len(raw) // 2] ^= 0x01
    tampered = wire(envelope, ciphertext=b64encode(bytes(raw)))
    accepted(post(relay, alice, "/v1/messages", tampered), envelope.id)  # opaque to the relay

    after = await alice.send_text("bob", "after the tampering")
    got = await sync_all(bob)
    assert set(got) == {before.msg_id, envelope.id, after.msg_id}
    assert_quarantined(got[envelope.id], "alice", "cannot_decrypt")
    assert_verified(got[before.msg_id], "alice", "before the tampering")
    assert_verified(got[after.msg_id], "alice", "after the tampering")


# --- 2. swapped recipient ------------------------------------------------------------------


async def test_payload_written_for_carol_delivered_to_bob_is_recipient_mismatch(
    sqlite_relay, make_account
):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    carol = await make_account("carol", relay)

    for_carol = chat("alice", "carol", "only for carol")
    ciphertext = b64encode(
        SealedBox(box_of(bob)).encrypt(pad(sign_payload(for_carol, alice.profile.keys)))
    )
    swapped = Envelope(id=for_carol.id, sender="alice", recipient="bob", ciphertext=ciphertext)
    accepted(post(relay, alice, "/v1/messages", wire(swapped)), swapped.id)
    good = await alice.send_text("bob", "for bob")

    got = await sync_all(bob)
    assert set(got) == {swapped.id, good.msg_id}
    assert_quarantined(got[swapped.id], "alice", "recipient_mismatch")
    assert "written for carol" in (got[swapped.id].quarantine_detail or "")
    assert_verified(got[good.msg_id], "alice", "for bob")
    assert (await carol.sync()).stored == []


# --- 3. replays ----------------------------------------------------------------------------


async def test_envelope_replayed_under_a_new_id_is_id_mismatch(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    original = await alice.send_text("bob", "pay 10 EUR")
    [item] = (await bob.api.mailbox_page()).items  # captured before bob acks it

    replay_id = new_message_id()
    accepted(post(relay, alice, "/v1/messages", wire(item.envelope, id=replay_id)), replay_id)
    good = await alice.send_text("bob", "that was all")

    got = await sync_all(bob)
    assert set(got) == {original.msg_id, replay_id, good.msg_id}
    assert_verified(got[original.msg_id], "alice", "pay 10 EUR")
    assert_quarantined(got[replay_id], "alice", "id_mismatch")
    assert_verified(got[good.msg_id], "alice", "that was all")
    assert [m.text for m in bob.store.messages("alice") if m.status == "verified"] == [
        "pay 10 EUR",
        "that was all",
    ]


async def test_exact_resend_of_an_envelope_is_a_duplicate_stored_once(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    original = await alice.send_text("bob", "once only")
    [item] = (await bob.api.mailbox_page()).items
    duplicate = {"id": original.msg_id, "status": "duplicate", "error": None}

    resent = post(relay, alice, "/v1/messages", wire(item.envelope))
    assert (resent.status_code, resent.json()) == (200, duplicate)
    got = await sync_all(bob)
    assert list(got) == [original.msg_id]
    assert_verified(got[original.msg_id], "alice", "once only")

    # After the ack the relay keeps a tombstone: still a duplicate, never a second delivery.
    resent = post(relay, alice, "/v1/messages", wire(item.envelope))
    assert (resent.status_code, resent.json()) == (200, duplicate)
    batch = post(relay, alice, "/v1/messages/batch", {"envelopes": [wire(item.envelope)] * 2})
    assert batch.status_code == 200, batch.text
    assert batch.json() == {
        "accepted": 0,
        "duplicate": 2,
        "rejected": 0,
        "results": [duplicate, duplicate],
    }
    good = await alice.send_text("bob", "second message")
    assert list(await sync_all(bob)) == [good.msg_id]
    assert [m.msg_id for m in bob.store.messages("alice")] == [original.msg_id, good.msg_id]


async def test_mallory_cannot_repost_alices_envelope(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    mallory = await make_account("mallory", relay)
    original = await alice.send_text("bob", "from the real alice")
    [item] = (await bob.api.mailbox_page()).items
    captured = wire(item.envelope)

    assert_error(
        post(relay, mallory, "/v1/messages", captured), 403, "sender_mismatch", "alice", "mallory"
    )
    as_mallory = {**captured, "sender": "mallory"}
    assert_error(post(relay, mallory, "/v1/messages", as_mallory), 409, "id_conflict")
    to_herself = {**captured, "sender": "mallory", "recipient": "mallory"}
    assert_error(post(relay, mallory, "/v1/messages", to_herself), 409, "id_conflict")

    own = seal_envelope(chat("mallory", "bob", "hi bob"), mallory.profile.keys, box_of(bob))
    batch = post(relay, mallory, "/v1/messages/batch", {"envelopes": [as_mallory, wire(own)]})
    assert batch.status_code == 200, batch.text
    answer = batch.json()
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (1, 0, 1)
    assert [(r["id"], r["status"]) for r in answer["results"]] == [
        (original.msg_id, "rejected"),
        (own.id, "accepted"),
    ]
    assert answer["results"][0]["error"]["code"] == "id_conflict"

    got = await sync_all(bob)
    assert set(got) == {original.msg_id, own.id}
    assert_verified(got[original.msg_id], "alice", "from the real alice")
    assert_verified(got[own.id], "mallory", "hi bob")
    assert (await mallory.sync()).stored == []
    # The id still belongs to alice: her own retry is recognised.
    assert post(relay, alice, "/v1/messages", captured).json()["status"] == "duplicate"


async def test_quarantine_is_the_same_when_a_big_page_is_opened_in_worker_processes(
    sqlite_relay, make_account, monkeypatch
):
    """A catch-up opens big pages in worker processes (client/opening.py): each of the
    hostile envelopes above gets the same verdict there, and the rest arrive in order."""
    monkeypatch.setattr(client.messenger, "PARALLEL_OPEN_MIN", 2)
    monkeypatch.setattr(client.messenger, "OPEN_CHUNK", 3)
    monkeypatch.setattr(client.messenger, "OPEN_WORKERS", 2)
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    mallory = await make_account("mallory", relay)
    sent = [await alice.send_text("bob", f"genuine {i}") for i in range(4)]

    tampered = seal_envelope(chat("alice", "bob", "tamper me"), alice.profile.keys, box_of(bob))
    raw = bytearray(tampered.ciphertext_bytes())
    raw[len(raw) // 2] ^= 0x01
    accepted(
        post(relay, alice, "/v1/messages", wire(tampered, ciphertext=b64encode(bytes(raw)))),
        tampered.id,
    )
    for_carol = chat("alice", "carol", "only for carol")
    swapped = Envelope(
        id=for_carol.id,
        sender="alice",
        recipient="bob",
        ciphertext=b64encode(
            SealedBox(box_of(bob)).encrypt(pad(sign_payload(for_carol, alice.profile.keys)))
        ),
    )
    accepted(post(relay, alice, "/v1/messages", wire(swapped)), swapped.id)
    claim = chat("alice", "bob", "I am alice, send money")
    forged = Envelope(
        id=claim.id,
        sender="mallory",
        recipient="bob",
        ciphertext=b64encode(
            SealedBox(box_of(bob)).encrypt(pad(sign_payload(claim, mallory.profile.keys)))
        ),
    )
    accepted(post(relay, mallory, "/v1/messages", wire(forged)), claim.id)
    sent.append(await alice.send_text("bob", "after all that"))

    report = await bob.sync()
    assert bob._opener._pool is not None  # the worker processes did the opening
    assert (await bob.api.mailbox_page()).items == []
    got = {m.msg_id: m for m in report.stored}
    genuine = [m.msg_id for m in sent]
    assert list(got) == [*genuine[:4], tampered.id, swapped.id, claim.id, genuine[4]]
    assert_quarantined(got[tampered.id], "alice", "cannot_decrypt")
    assert_quarantined(got[swapped.id], "alice", "recipient_mismatch")
    assert "written for carol" in (got[swapped.id].quarantine_detail or "")
    assert_quarantined(got[claim.id], "mallory", "sender_mismatch")
    for message in sent:
        assert_verified(got[message.msg_id], "alice", message.text or "")
    stored = {m.msg_id: m for m in bob.store.messages()}
    assert {k: (m.status, m.text, m.quarantine_reason) for k, m in got.items()} == {
        k: (m.status, m.text, m.quarantine_reason) for k, m in stored.items()
    }
    convo = {c.peer: c.unread for c in bob.store.conversations()}
    assert convo == {"alice": 7, "mallory": 1}


async def test_a_dead_opening_worker_means_opening_in_process_not_a_lost_page(
    sqlite_relay, make_account, monkeypatch
):
    monkeypatch.setattr(client.messenger, "PARALLEL_OPEN_MIN", 2)
    monkeypatch.setattr(client.messenger, "OPEN_CHUNK", 2)
    monkeypatch.setattr(client.messenger, "OPEN_WORKERS", 2)
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    sent = [await alice.send_text("bob", f"m{i}") for i in range(5)]

    def killed(jobs, keys):  # as if the worker process had been killed mid-job
        future = asyncio.get_running_loop().create_future()
        future.set_exception(BrokenProcessPool("a worker died"))
        return future

    monkeypatch.setattr(bob._opener, "elsewhere", killed)
    got = await sync_all(bob)
    assert list(got) == [m.msg_id for m in sent]
    for message in sent:
        assert_verified(got[message.msg_id], "alice", message.text or "")


# --- 4. forged signatures ------------------------------------------------------------------


async def test_mallory_claiming_to_be_alice_is_sender_mismatch(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    mallory = await make_account("mallory", relay)
    genuine = await alice.send_text("bob", "the real alice")

    claim = chat("alice", "bob", "I am alice, send money")
    ciphertext = b64encode(
        SealedBox(box_of(bob)).encrypt(pad(sign_payload(claim, mallory.profile.keys)))
    )
    # The relay will not carry it as from alice unless the request is signed as alice ...
    as_alice = Envelope(id=claim.id, sender="alice", recipient="bob", ciphertext=ciphertext)
    assert_error(post(relay, mallory, "/v1/messages", wire(as_alice)), 403, "sender_mismatch")
    # ... so mallory sends it as herself, with the payload still claiming alice.
    forged = wire(as_alice, sender="mallory")
    accepted(post(relay, mallory, "/v1/messages", forged), claim.id)
    after = await alice.send_text("bob", "still me")

    got = await sync_all(bob)
    assert set(got) == {genuine.msg_id, claim.id, after.msg_id}
    # The signature checks out against mallory's key; the payload's sender does not.
    assert_quarantined(got[claim.id], "mallory", "sender_mismatch")
    assert_verified(got[genuine.msg_id], "alice", "the real alice")
    assert_verified(got[after.msg_id], "alice", "still me")
    assert [m.text for m in bob.store.messages("alice")] == ["the real alice", "still me"]


async def test_payload_signed_with_the_wrong_key_is_bad_signature(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    mallory = await make_account("mallory", relay)
    # Alice's device is compromised for signing only: relay auth is hers, the payload key not.
    compromised = AccountKeys(signing=mallory.profile.keys.signing, box=alice.profile.keys.box)
    forged = seal_envelope(chat("alice", "bob", "wrongly signed"), compromised, box_of(bob))
    accepted(post(relay, alice, "/v1/messages", wire(forged)), forged.id)
    good = await alice.send_text("bob", "rightly signed")

    got = await sync_all(bob)
    assert set(got) == {forged.id, good.msg_id}
    assert_quarantined(got[forged.id], "alice", "bad_signature")
    assert "alice's published key" in (got[forged.id].quarantine_detail or "")
    assert_verified(got[good.msg_id], "alice", "rightly signed")


async def test_undecodable_plaintexts_are_quarantined(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    size = MIN_CIPHERTEXT_BYTES - SEAL_OVERHEAD_BYTES
    body = b"not json at all"
    signature = alice.profile.keys.signing.sign(SIGNING_CONTEXT + body).signature
    plaintexts = {
        "bad_padding": b"\xff" * size,  # the length prefix points past the end
        "bad_payload": pad(signature + body),  # validly signed, but not a payload
    }
    sent: dict[str, str] = {}
    for reason, plaintext in plaintexts.items():
        envelope = Envelope(
            id=new_message_id(),
            sender="alice",
            recipient="bob",
            ciphertext=sealed_to(bob, plaintext),
        )
        accepted(post(relay, alice, "/v1/messages", wire(envelope)), envelope.id)
        sent[reason] = envelope.id
    good = await alice.send_text("bob", "readable")

    got = await sync_all(bob)
    assert set(got) == {*sent.values(), good.msg_id}
    for reason, msg_id in sent.items():
        assert_quarantined(got[msg_id], "alice", reason)
    assert_verified(got[good.msg_id], "alice", "readable")


async def test_payload_with_absurd_sent_at_does_not_block_the_mailbox(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    mallory = await make_account("mallory", relay)
    # model_construct: the schema itself now refuses this, so build it around the schema,
    # as a malicious client would.
    absurd = chat("mallory", "bob", "poison").model_copy(update={"sent_at": 2**64})
    poison = seal_envelope(absurd, mallory.profile.keys, box_of(bob))
    accepted(post(relay, mallory, "/v1/messages", wire(poison)), poison.id)
    good = await alice.send_text("bob", "behind the poison")

    got = await sync_all(bob)  # today: OverflowError from the local store, nothing is acked
    assert set(got) == {poison.id, good.msg_id}
    assert_quarantined(got[poison.id], "mallory", "bad_payload")
    assert_verified(got[good.msg_id], "alice", "behind the poison")


async def test_recipient_with_unusable_box_key_does_not_block_the_outbox(
    sqlite_relay, make_account
):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    keys = AccountKeys.generate()
    zero_box = registration("zero", keys, box_key=b64encode(bytes(32)))  # low-order X25519 key
    answer = signed(relay.url, keys, "zero", "POST", "/v1/accounts", zero_box)
    if answer.status_code == 201:  # the relay took the key, so the client must cope with it
        doomed = await alice.send_text("zero", "cannot be sealed")
        assert doomed.status == "failed"
        assert alice.store.outbox() == []
    else:
        assert_error(answer, 422, "invalid_request", "box_key")

    good = await alice.send_text("bob", "must still go out")
    assert good.status == "sent"
    got = await sync_all(bob)
    assert_verified(got[good.msg_id], "alice", "must still go out")


# --- 5. sizes ------------------------------------------------------------------------------


async def test_oversize_or_unpadded_ciphertexts_and_oversize_batches_are_invalid(
    sqlite_relay, make_account
):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)

    def envelope_of(ciphertext: str) -> dict[str, Any]:
        return {
            "id": new_message_id(),
            "sender": "alice",
            "recipient": "bob",
            "ciphertext": ciphertext,
        }

    def random_b64(n: int) -> str:
        return b64encode(secrets.token_bytes(n))

    oversize = post(relay, alice, "/v1/messages", envelope_of(random_b64(2 * MAX_CIPHERTEXT_BYTES)))
    assert_error(oversize, 422, "invalid_request", "ciphertext")
    for n in (MAX_CIPHERTEXT_BYTES + 1, 1000, 300, MIN_CIPHERTEXT_BYTES - 1):
        answer = post(relay, alice, "/v1/messages", envelope_of(random_b64(n)))
        assert_error(
            answer,
            422,
            "invalid_request",
            "ciphertext",
            f"is {n} bytes",
            "padded to a power of two",
        )
    below_smallest = envelope_of(random_b64(MIN_CIPHERTEXT_BYTES // 2))
    assert_error(
        post(relay, alice, "/v1/messages", below_smallest),
        422,
        "invalid_request",
        "padded to a power of two",
    )
    not_b64 = post(relay, alice, "/v1/messages", envelope_of("not base64!" * 40))
    assert_error(not_b64, 422, "invalid_request", "base64")

    template = wire(seal_envelope(chat("alice", "bob", "bulk"), alice.profile.keys, box_of(bob)))
    bulk = [{**template, "id": new_message_id()} for _ in range(1001)]
    answer = post(relay, alice, "/v1/messages/batch", {"envelopes": bulk})
    assert_error(answer, 422, "invalid_request", "envelopes", "1000")
    empty = post(relay, alice, "/v1/messages/batch", {"envelopes": []})
    assert_error(empty, 422, "invalid_request", "envelopes")

    # Exactly 64 KiB is the largest bucket: accepted, and (random bytes) quarantined by bob.
    largest = envelope_of(random_b64(MAX_CIPHERTEXT_BYTES))
    accepted(post(relay, alice, "/v1/messages", largest), largest["id"])
    good = await alice.send_text("bob", "normal size")
    got = await sync_all(bob)  # nothing of the refused envelopes or batch was stored
    assert set(got) == {largest["id"], good.msg_id}
    assert_quarantined(got[largest["id"]], "alice", "cannot_decrypt")
    assert_verified(got[good.msg_id], "alice", "normal size")


def post_chunked(url: str, headers: dict[str, str], raw: bytes) -> httpx.Response:
    """POST without Content-Length (Transfer-Encoding: chunked), 1 KiB at a time."""

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 1024):
            yield raw[start : start + 1024]

    return httpx.post(url, content=chunks(), headers=headers, timeout=10)


async def test_request_body_over_the_limit_is_413(small_body_relay, make_account):
    relay = small_body_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    big = seal_envelope(chat("alice", "bob", "x" * 6000), alice.profile.keys, box_of(bob))
    raw = big.model_dump_json().encode()
    assert len(raw) > relay.settings.max_body_bytes == 4096

    answer = post(relay, alice, "/v1/messages", raw)  # with Content-Length
    assert_error(answer, 413, "payload_too_large", "4096 bytes")
    headers = sign_request(alice.profile.keys.signing, "alice", "POST", "/v1/messages", raw)
    headers["Content-Type"] = "application/json"
    answer = post_chunked(relay.url + "/v1/messages", headers, raw)  # without: read up to limit
    assert_error(answer, 413, "payload_too_large", "4096 bytes")

    good = await alice.send_text("bob", "small enough")
    assert good.status == "sent"
    got = await sync_all(bob)
    assert list(got) == [good.msg_id]
    assert_verified(got[good.msg_id], "alice", "small enough")


# --- 6. malformed requests -----------------------------------------------------------------


async def test_malformed_json_unknown_fields_and_other_bad_input_never_5xx(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    envelope = seal_envelope(chat("alice", "bob", "x"), alice.profile.keys, box_of(bob))
    base = wire(envelope)

    truncated = post(relay, alice, "/v1/messages", b'{"id": "' + envelope.id.encode())
    assert_error(truncated, 400, "malformed_json", "not valid JSON")
    extra = post(relay, alice, "/v1/messages", {**base, "smuggled": "1"})
    assert_error(extra, 422, "invalid_request", "smuggled")

    some_id = new_message_id()
    fresh = AccountKeys.generate()
    cases: list[tuple[str, str, Any, int, str | None]] = [
        ("POST", "/v1/messages", b"{not json", 400, "malformed_json"),
        ("POST", "/v1/messages", b"\xff\xfe", 400, "malformed_json"),
        ("POST", "/v1/messages", b'{"v": 1}\x00', 400, "malformed_json"),
        # Valid syntax nested too deep for the parser: a clear 400, not a crash.
        ("POST", "/v1/messages", b"[" * 100_000, 400, None),
        ("POST", "/v1/messages", b"", 422, "invalid_request"),
        ("POST", "/v1/messages", b"[]", 422, "invalid_request"),
        # The batch body is parsed from its bytes by pydantic, not FastAPI: the same answers.
        ("POST", "/v1/messages/batch", b"{not json", 400, "malformed_json"),
        ("POST", "/v1/messages/batch", b"\xff\xfe", 400, "malformed_json"),
        ("POST", "/v1/messages/batch", b'{"envelopes": []}\x00', 400, "malformed_json"),
        ("POST", "/v1/messages/batch", b"[" * 100_000, 400, None),
        ("POST", "/v1/messages/batch", b"", 400, "malformed_json"),
        ("POST", "/v1/messages/batch", b"[]", 422, "invalid_request"),
        ("POST", "/v1/messages", b"null", 422, "invalid_request"),
        ("POST", "/v1/messages", b'"envelope"', 422, "invalid_request"),
        ("POST", "/v1/messages", b"1e999999", 422, "invalid_request"),
        ("POST", "/v1/messages", {}, 422, "invalid_request"),
        ("POST", "/v1/messages", {**base, "v": 2}, 422, "invalid_request"),
        ("POST", "/v1/messages", {**base, "id": some_id.upper()}, 422, "invalid_request"),
        ("POST", "/v1/messages", {**base, "sender": "Alice!"}, 422, "invalid_request"),
        ("POST", "/v1/messages", {**base, "ciphertext": 12345}, 422, "invalid_request"),
        ("POST", "/v1/messages", {**base, "not_before": -1}, 422, "invalid_request"),
        ("POST", "/v1/messages", {**base, "category": "marketing"}, 422, "invalid_category"),
        ("POST", "/v1/messages/batch", {}, 422, "invalid_request"),
        ("POST", "/v1/messages/batch", {"envelopes": "all of them"}, 422, "invalid_request"),
        ("POST", "/v1/messages/batch", {"envelopes": [{**base, "v": 2}]}, 422, "invalid_request"),
        ("POST", "/v1/mailboxes/alice/ack", {"ids": []}, 422, "invalid_request"),
        ("POST", "/v1/mailboxes/alice/ack", {"ids": ["NOT-AN-ID"]}, 422, "invalid_request"),
        ("POST", "/v1/mailboxes/alice/ack", {"ids": [some_id] * 1001}, 422, "invalid_request"),
        ("POST", "/v1/mailboxes/alice/ack", b"{", 400, "malformed_json"),
        ("GET", "/v1/mailboxes/alice?after=-1", b"", 422, "invalid_request"),
        ("GET", "/v1/mailboxes/alice?after=soon", b"", 422, "invalid_request"),
        ("GET", "/v1/mailboxes/alice?limit=0", b"", 422, "invalid_request"),
        ("GET", "/v1/mailboxes/alice?limit=1001", b"", 422, "invalid_request"),
        ("GET", "/v1/mailboxes/Alice", b"", 422, "invalid_request"),
        ("GET", "/v1/accounts/NOT_A_HANDLE", b"", 422, "invalid_request"),
        ("GET", "/v1/nowhere", b"", 404, "not_found"),
        ("DELETE", "/v1/messages", b"", 405, "method_not_allowed"),
    ]
    for method, path, body, status, code in cases:
        answer = signed(relay.url, alice.profile.keys, "alice", method, path, body)
        assert answer.status_code < 500, (method, path, answer.text)
        assert_error(answer, status, code)

    # Registration bodies, signed by the key they register.
    bad_registrations = [
        registration("dave", fresh, sign_key=b64encode(bytes(31))),
        registration("dave", fresh, box_key="***"),
        registration("dave", fresh, country=None),  # a person needs a country
        registration("dave", fresh, kind="robot"),
        registration("dave", fresh, display_name=""),
        registration("dave", fresh, admin=True),
    ]
    for body in bad_registrations:
        answer = signed(relay.url, fresh, "dave", "POST", "/v1/accounts", body)
        assert_error(answer, 422, "invalid_request")
    assert_error(get(relay, alice, "/v1/accounts/dave"), 404, "unknown_handle")

    # None of the refused variants was stored: the real envelope is new, not a conflict.
    accepted(post(relay, alice, "/v1/messages", base), envelope.id)
    good = await alice.send_text("bob", "after the garbage")
    got = await sync_all(bob)
    assert list(got) == [envelope.id, good.msg_id]
    assert_verified(got[envelope.id], "alice", "x")
    assert_verified(got[good.msg_id], "alice", "after the garbage")
    assert (await alice.sync()).stored == []


async def test_body_that_is_not_utf8_is_malformed_json(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    latin1 = '{"id": "caf\u00e9"}'.encode("latin-1")
    for raw in (latin1, b"\xff\xfe\x00"):
        answer = post(relay, alice, "/v1/messages", raw)
        assert_error(answer, 400, "malformed_json", "not valid JSON")
    good = await alice.send_text("bob", "utf-8 only")
    assert_verified((await sync_all(bob))[good.msg_id], "alice", "utf-8 only")


async def test_out_of_range_integers_are_refused_not_500(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    huge = 2**63  # one past the largest BIGINT / SQLite INTEGER

    def envelope(**fields: Any) -> dict[str, Any]:
        return wire(
            seal_envelope(chat("alice", "bob", "x"), alice.profile.keys, box_of(bob)), **fields
        )

    outcomes: dict[str, tuple[int, str]] = {}

    def record(name: str, answer: httpx.Response) -> None:
        code = answer.json()["error"]["code"] if answer.status_code >= 400 else ""
        outcomes[name] = (answer.status_code, code)

    record("not_before", post(relay, alice, "/v1/messages", envelope(not_before=huge)))
    record("expires_at", post(relay, alice, "/v1/messages", envelope(expires_at=huge)))
    record(
        "batch",
        post(
            relay,
            alice,
            "/v1/messages/batch",
            {"envelopes": [envelope(), envelope(not_before=huge)]},
        ),
    )
    record("page after", get(relay, alice, f"/v1/mailboxes/alice?after={huge}"))
    good = await alice.send_text("bob", "still fine")
    got = await sync_all(bob)

    # Asserted last: see test_control_characters_in_display_name_are_not_a_5xx.
    refused = (422, "invalid_request")
    assert outcomes == dict.fromkeys(["not_before", "expires_at", "batch", "page after"], refused)
    assert list(got) == [good.msg_id]  # the batch's good envelope was not half-stored
    assert_verified(got[good.msg_id], "alice", "still fine")


async def test_control_characters_in_display_name_are_not_a_5xx(request, relay, make_account):
    alice = await make_account("alice", relay)
    keys = AccountKeys.generate()
    body = registration("nulname", keys, display_name="evil\x00name")
    answer = signed(relay.url, keys, "nulname", "POST", "/v1/accounts", body)
    bob = await make_account("bob", relay)
    good = await alice.send_text("bob", "registrations still work")
    got = await sync_all(bob)

    # Asserted only now: after a 500 the relay thread logs a traceback, and on Python 3.11 that
    # races pytest rendering this failure (both use the ast module) into an INTERNALERROR.
    assert answer.status_code < 500, answer.text
    assert_error(answer, 422, "invalid_request", "display_name", "U+0000")
    assert_verified(got[good.msg_id], "alice", "registrations still work")


# Names that would pass for a verified business, or would reorder, hide or inject text on a
# person's screen, with the code point the relay's answer must name.
IMPERSONATING_NAMES = [
    ("ACME Shoes ✔", "U+2714"),
    ("ACME Shoes ✓", "U+2713"),
    ("☑ ACME Shoes", "U+2611"),
    ("ACME Shoes ✅", "U+2705"),
    ("ACME Shoes 🗸", "U+1F5F8"),
    ("ACME Shoes 🗹", "U+1F5F9"),
    ("ACME \u202eseohS", "U+202E"),  # right-to-left override
    ("ACME \u2066Shoes\u2069", "U+2066"),  # left-to-right isolate
    ("ACME\u200bShoes", "U+200B"),  # zero-width space
    ("\ufeffACME Shoes", "U+FEFF"),
    ("ACME \x9b31mShoes", "U+009B"),  # C1 CSI: a terminal starts an escape sequence
    ("ACME \x1b[31mShoes", "U+001B"),
    ("ACME\u2028Shoes", "U+2028"),
    ("ACME\u2029Shoes", "U+2029"),
    ("ACME\u3164Shoes", "U+3164"),  # a Hangul filler, drawn as blank
    (" ACME Shoes", "space"),
    ("ACME Shoes ", "space"),
    ("A" * 65, "shorten it"),
]


@pytest.mark.parametrize(("name", "named"), IMPERSONATING_NAMES)
async def test_impersonating_display_names_are_refused_at_registration(
    sqlite_relay, make_account, name, named
):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    keys = AccountKeys.generate()
    body = registration("mallory", keys, kind="business", country=None, display_name=name)
    answer = signed(relay.url, keys, "mallory", "POST", "/v1/accounts", body)
    what_to_do = "remove it" if named.startswith("U+") else "display name"
    assert_error(answer, 422, "invalid_request", "display_name", named, what_to_do)
    assert_error(get(relay, alice, "/v1/accounts/mallory"), 404, "unknown_handle")


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("ACME Shoes", "ACME Shoes"),
        ("Zoë's Café 😀", "Zoë's Café 😀"),
        ("Zoe\u0308", "Zo\u00eb"),  # NFD in, NFC stored
        ("👨\u200d👩\u200d👧 Family", "👨\u200d👩\u200d👧 Family"),  # ZWJ inside an emoji
        ("Ωμέγα Ltd", "Ωμέγα Ltd"),
        ("A" * 64, "A" * 64),
    ],
)
async def test_ordinary_display_names_are_accepted_in_nfc(sqlite_relay, make_account, name, stored):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    keys = AccountKeys.generate()
    body = registration("zoe", keys, display_name=name)
    answer = signed(relay.url, keys, "zoe", "POST", "/v1/accounts", body)
    assert answer.status_code == 201, answer.text
    assert get(relay, alice, "/v1/accounts/zoe").json()["display_name"] == stored


async def test_a_directory_entry_that_breaks_the_rules_is_shown_by_handle(
    relay, make_account, home
):
    bob = await make_account("bob", relay)
    hostile = {
        "mallory": "ACME Shoes ✔",
        "trudy": "ACME \x9b31m\u202eseohS",
        "oscar": "line one\u2028line two",
    }
    senders = [legacy_account(relay, home, handle, name) for handle, name in hostile.items()]
    try:
        for sender in senders:
            await sender.send_text("bob", "hello \x9b2J\u202etxet\u2028[b]x[/b]")
        got = await sync_all(bob)  # looked up together, as a page of senders is
        assert {m.sender for m in got.values()} == set(hostile)
        for handle in hostile:
            assert bob.store.contact(handle).display_name == handle
            assert bob.store.conversation(handle).display_name == handle
        # The CLI prints the handle and the text escaped, like the app.
        printed = sealpost(home, "inbox", "--profile", "bob", "--no-sync").stdout
        assert "ACME" not in printed and "== trudy (@trudy)" in printed
        assert "hello \\x9b2J\\u202etxet\\u2028[b]x[/b]" in printed
        assert not [ch for ch in printed if ch in "\x9b\u202e\u2028"]
        # A single lookup (sending first) is checked the same way.
        carol = await make_account("carol", relay)
        assert (await carol.contact("trudy")).display_name == "trudy"
    finally:
        for sender in senders:
            await sender.aclose()


# --- 7. unknown handles --------------------------------------------------------------------


async def test_unknown_handle_and_unknown_recipient(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    assert_error(get(relay, alice, "/v1/accounts/nobody"), 404, "unknown_handle", "nobody")

    nobody_box = AccountKeys.generate().public.box
    lost = seal_envelope(chat("alice", "nobody", "into the void"), alice.profile.keys, nobody_box)
    assert_error(post(relay, alice, "/v1/messages", wire(lost)), 404, "unknown_recipient", "nobody")

    first = seal_envelope(chat("alice", "bob", "first"), alice.profile.keys, box_of(bob))
    last = seal_envelope(chat("alice", "bob", "last"), alice.profile.keys, box_of(bob))
    batch = post(
        relay, alice, "/v1/messages/batch", {"envelopes": [wire(first), wire(lost), wire(last)]}
    )
    assert batch.status_code == 200, batch.text
    answer = batch.json()
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (2, 0, 1)
    assert [(r["id"], r["status"]) for r in answer["results"]] == [
        (first.id, "accepted"),
        (lost.id, "rejected"),
        (last.id, "accepted"),
    ]
    assert answer["results"][1]["error"]["code"] == "unknown_recipient"

    got = await sync_all(bob)
    assert list(got) == [first.id, last.id]
    assert_verified(got[first.id], "alice", "first")
    assert_verified(got[last.id], "alice", "last")


# --- 8. other people's mailboxes -----------------------------------------------------------


async def test_bob_cannot_read_stream_or_ack_alices_mailbox(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    carol = await make_account("carol", relay)
    one = await carol.send_text("alice", "one")
    two = await bob.send_text("alice", "two")
    ids = [one.msg_id, two.msg_id]

    assert_error(get(relay, bob, "/v1/mailboxes/alice"), 403, "forbidden", "bob", "alice")
    assert_error(get(relay, bob, "/v1/mailboxes/alice?after=0&limit=5"), 403, "forbidden")
    assert_error(get(relay, bob, "/v1/mailboxes/alice/stream"), 403, "forbidden")
    assert_error(post(relay, bob, "/v1/mailboxes/alice/ack", {"ids": ids}), 403, "forbidden")

    # Through his own mailbox the ids are simply not his: reported unknown, nothing changes.
    answer = post(relay, bob, "/v1/mailboxes/bob/ack", {"ids": ids})
    assert (answer.status_code, answer.json()) == (200, {"acked": [], "unknown": ids})

    got = await sync_all(alice)
    assert list(got) == ids
    assert_verified(got[one.msg_id], "carol", "one")
    assert_verified(got[two.msg_id], "bob", "two")


# --- 9. request authentication -------------------------------------------------------------


def send_with(
    relay: EmbeddedRelay, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> httpx.Response:
    return httpx.request(
        method,
        relay.url + path,
        content=body,
        timeout=10,
        headers={**headers, "Content-Type": "application/json"},
    )


async def test_unsigned_stale_or_unknown_requests_are_refused(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    path = "/v1/accounts/alice"
    assert_error(
        send_with(relay, "GET", path, {}),
        401,
        "unauthenticated",
        "Sealpost-Handle",
        "Sealpost-Timestamp",
        "Sealpost-Nonce",
        "Sealpost-Signature",
    )
    headers = sign_request(alice.profile.keys.signing, "alice", "GET", path)
    without_signature = {k: v for k, v in headers.items() if k != "Sealpost-Signature"}
    message = assert_error(
        send_with(relay, "GET", path, without_signature),
        401,
        "unauthenticated",
        "Sealpost-Signature",
    )
    assert "Sealpost-Nonce" not in message
    truncated = {**headers, "Sealpost-Signature": "AAAA"}
    assert_error(send_with(relay, "GET", path, truncated), 401, "bad_signature", "64 bytes")

    ten_minutes = 10 * 60 * 1000
    old = signed(
        relay.url, alice.profile.keys, "alice", "GET", path, timestamp_ms=now_ms() - ten_minutes
    )
    assert_error(old, 401, "stale_request", "-600 s", "±60 s")
    future = signed(
        relay.url, alice.profile.keys, "alice", "GET", path, timestamp_ms=now_ms() + ten_minutes
    )
    assert_error(future, 401, "stale_request", "+600 s")

    stranger = AccountKeys.generate()
    answer = signed(relay.url, stranger, "stranger", "GET", path)
    # As a wrong key would: a probe cannot tell which handles exist.
    assert_error(answer, 401, "bad_signature", "or there is no such account")

    # None of that used up anything: a proper request from alice goes through.
    assert get(relay, alice, path).json()["sign_key"] == alice.profile.keys.public.sign_b64


async def test_wrong_key_and_altered_requests_are_bad_signature(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    mallory_keys = AccountKeys.generate()
    answer = signed(relay.url, mallory_keys, "alice", "GET", "/v1/accounts/bob")
    assert_error(answer, 401, "bad_signature")

    envelope = seal_envelope(chat("alice", "bob", "as signed"), alice.profile.keys, box_of(bob))
    raw = envelope.model_dump_json().encode()
    headers = sign_request(alice.profile.keys.signing, "alice", "POST", "/v1/messages", raw)
    other = seal_envelope(chat("alice", "bob", "swapped in"), alice.profile.keys, box_of(bob))
    altered = send_with(relay, "POST", "/v1/messages", headers, other.model_dump_json().encode())
    assert_error(altered, 401, "bad_signature")

    query_headers = sign_request(
        alice.profile.keys.signing, "alice", "GET", "/v1/mailboxes/alice?after=0"
    )
    moved = send_with(relay, "GET", "/v1/mailboxes/alice?after=5", query_headers)
    assert_error(moved, 401, "bad_signature")

    # The untouched request still goes through (its nonce was never consumed).
    accepted(send_with(relay, "POST", "/v1/messages", headers, raw), envelope.id)
    got = await sync_all(bob)
    assert list(got) == [envelope.id]
    assert_verified(got[envelope.id], "alice", "as signed")


async def test_reused_nonce_and_replayed_request_are_refused(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    nonce = secrets.token_hex(16)
    first = signed(relay.url, alice.profile.keys, "alice", "GET", "/v1/accounts/bob", nonce=nonce)
    assert first.status_code == 200, first.text
    again = signed(relay.url, alice.profile.keys, "alice", "GET", "/v1/accounts/bob", nonce=nonce)
    assert_error(again, 401, "replayed_request", "nonce")
    # Nonces are per account: bob may happen to use the same one.
    assert (
        signed(
            relay.url, bob.profile.keys, "bob", "GET", "/v1/accounts/alice", nonce=nonce
        ).status_code
        == 200
    )

    # A captured send, replayed byte for byte: refused before it reaches the mailbox.
    envelope = seal_envelope(chat("alice", "bob", "once"), alice.profile.keys, box_of(bob))
    raw = envelope.model_dump_json().encode()
    headers = sign_request(alice.profile.keys.signing, "alice", "POST", "/v1/messages", raw)
    accepted(send_with(relay, "POST", "/v1/messages", headers, raw), envelope.id)
    assert_error(send_with(relay, "POST", "/v1/messages", headers, raw), 401, "replayed_request")
    got = await sync_all(bob)
    assert list(got) == [envelope.id]
    assert_verified(got[envelope.id], "alice", "once")


async def test_a_refused_request_cannot_be_replayed_once_it_would_succeed(relay, make_account):
    """The nonce of a request the endpoint refused is kept, though its transaction rolled
    back: replaying it later, when it would be accepted, is still refused."""
    alice = await make_account("alice", relay)
    headers = sign_request(alice.profile.keys.signing, "alice", "GET", "/v1/accounts/bob")
    assert_error(send_with(relay, "GET", "/v1/accounts/bob", headers), 404, "unknown_handle")
    bob_keys = AccountKeys.generate()
    bob = signed(relay.url, bob_keys, "bob", "POST", "/v1/accounts", registration("bob", bob_keys))
    assert bob.status_code == 201, bob.text
    assert_error(send_with(relay, "GET", "/v1/accounts/bob", headers), 401, "replayed_request")


async def test_registration_attacks(sqlite_relay, make_account):
    relay = sqlite_relay
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)

    usurper = AccountKeys.generate()
    taken = signed(
        relay.url, usurper, "alice", "POST", "/v1/accounts", registration("alice", usurper)
    )
    assert_error(taken, 409, "handle_taken", "alice")
    directory = get(relay, bob, "/v1/accounts/alice").json()
    assert directory["sign_key"] == alice.profile.keys.public.sign_b64
    assert directory["box_key"] == alice.profile.keys.public.box_b64

    # Registering a key one does not hold: signed by another key than the one in the body.
    claimed, holder = AccountKeys.generate(), AccountKeys.generate()
    answer = signed(
        relay.url, holder, "dave", "POST", "/v1/accounts", registration("dave", claimed)
    )
    assert_error(answer, 401, "bad_signature")
    # Signed by the right key but as another handle than the one registered.
    answer = signed(
        relay.url, claimed, "erin", "POST", "/v1/accounts", registration("dave", claimed)
    )
    assert_error(answer, 401, "bad_signature", "handle")
    assert_error(get(relay, bob, "/v1/accounts/dave"), 404, "unknown_handle")

    good = await alice.send_text("bob", "still the real alice")
    got = await sync_all(bob)
    assert_verified(got[good.msg_id], "alice", "still the real alice")


# --- 10. rate limiting ---------------------------------------------------------------------


async def test_a_rate_limited_request_cannot_be_replayed_later(sqlite_url, make_account):
    with EmbeddedRelay(relay_settings(sqlite_url, rate_per_s=5, rate_burst=1)) as relay:
        alice = await make_account("alice", relay)
        first = signed(relay.url, alice.profile.keys, "alice", "GET", "/v1/prefs")
        assert first.status_code == 200, first.text
        headers = sign_request(alice.profile.keys.signing, "alice", "GET", "/v1/prefs")
        assert_error(send_with(relay, "GET", "/v1/prefs", headers), 429, "rate_limited")
        await asyncio.sleep(0.5)  # the bucket has room again; the captured one must not use it
        assert_error(send_with(relay, "GET", "/v1/prefs", headers), 401, "replayed_request")


async def test_rate_limit_answers_429_and_the_client_backs_off(sqlite_url, make_account):
    with EmbeddedRelay(relay_settings(sqlite_url, rate_per_s=1, rate_burst=3)) as relay:
        alice = await make_account("alice", relay)  # registration is not rate limited
        bob = await make_account("bob", relay)
        carol = await make_account("carol", relay)
        await alice.contact("bob")  # pins bob's keys: 1 of alice's 3 tokens
        await bob.contact("alice")  # 1 of bob's

        answers = [get(relay, alice, "/v1/accounts/nobody") for _ in range(4)]
        assert [a.status_code for a in answers] == [404, 404, 429, 429]
        assert_error(answers[2], 429, "rate_limited", "alice", "retry after")
        assert answers[2].headers["Retry-After"] == "1"
        # Buckets are per account: carol is not slowed down by alice.
        assert get(relay, carol, "/v1/accounts/alice").status_code == 200

        started = time.monotonic()
        sent = await alice.send_text("bob", "after the flood")
        assert sent.status == "sent"
        assert time.monotonic() - started >= 0.9  # it honoured Retry-After ...
        sends = [e for e in alice.ledger.entries() if e["url"] == relay.url + "/v1/messages"]
        assert len(sends) == 2  # ... once: a 429, then the same envelope again, accepted
        assert sends[0]["body"] == sends[1]["body"]

        report = await bob.sync()
        assert [(m.msg_id, m.status, m.text) for m in report.stored] == [
            (sent.msg_id, "verified", "after the flood")
        ]


# --- 11. health and schema -----------------------------------------------------------------


def test_health_and_openapi(sqlite_relay):
    health = httpx.get(sqlite_relay.url + "/healthz", timeout=10)
    assert (health.status_code, health.json()) == (200, {"status": "ok", "protocol": 1})
    schema = httpx.get(sqlite_relay.url + "/openapi.json", timeout=10)
    assert schema.status_code == 200
    paths = set(schema.json()["paths"])
    assert {
        "/v1/accounts",
        "/v1/accounts/{handle}",
        "/v1/messages",
        "/v1/messages/batch",
        "/v1/mailboxes/{handle}",
        "/v1/mailboxes/{handle}/ack",
        "/v1/mailboxes/{handle}/stream",
    } <= paths
    assert "post" in schema.json()["paths"]["/v1/messages"]
    # A body parsed from its bytes (server/json_body.py) is described all the same, and every
    # schema the description refers to is in it.
    batch = schema.json()["paths"]["/v1/messages/batch"]["post"]["requestBody"]
    assert batch["content"]["application/json"]["schema"]["$ref"].endswith("/BatchRequest")
    refs = set(re.findall(r"#/components/schemas/([\w.-]+)", schema.text))
    assert "BatchRequest" in refs
    assert refs <= set(schema.json()["components"]["schemas"])
