"""Keys the device can check (issue #15, item 3): a curious relay that is active on keys.

A token's DLEQ proof shows only that the relay used the key it named in the same answer. A
relay that names one person a key of her own (and evaluates her token with it) passes that
check, and can then tell her report from everyone else's: it verifies under her key and no
other. These tests run a real relay and a real shuffler on loopback and make the relay do what
an adversarial operator would (its issuing function replaced, its stored key log rewritten),
then check that the device notices and keeps the report to itself.
"""

import asyncio
import json
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from client.signals import PendingSignal
from sealpost.audit.recorder import RecordingRelay
from sealpost.cli import main
from server import signals as relay_signals
from server import token_log
from server.embedded import EmbeddedRelay
from server.models import TokenLogEntry
from server.signals import tally_of
from shared.encoding import b64encode
from shared.shuffled import SHUFFLED_PATH, public_key_b64
from shared.signals import decode_report
from shared.templates import TemplateDraft
from shared.token_log import (
    GENESIS,
    KEY_LOG_PATH,
    SHUFFLER_KEY_LOG_PATH,
    KeyLog,
    KeyLogEntry,
    KeyLogHead,
    entry_hash,
    log_key_fingerprint,
    verify_log,
)
from shared.tokens import IssuerKey, verify_token
from shuffler.embedded import EmbeddedShuffler
from shuffler.keys import load_or_create
from shuffler.settings import ShufflerSettings
from tests.conftest import relay_settings

OFFER = TemplateDraft(
    name="offer", category="marketing", body="Hi {{name}}, 20% off today.", examples={"name": "Ana"}
)


@pytest.fixture
def relay_and_shuffler(sqlite_url: str, tmp_path: Path):
    """A relay that counts reports only from its shuffler, and that shuffler (forwarding when
    the test says). The shuffler fetches the key log afresh for every device that asks, so
    that what the relay serves at each moment is what the device sees."""
    key_path = tmp_path / "shuffler.key"
    public = public_key_b64(load_or_create(key_path))
    with RecordingRelay(relay_settings(sqlite_url, shuffler_keys=[public])) as relay:
        settings = ShufflerSettings(
            db=tmp_path / "shuffler.db",
            relay=relay.url,
            key_path=key_path,
            batch=2,
            auto_forward=False,
            key_log_max_age_s=0,
            key_log_refresh_s=0,
        )
        with EmbeddedShuffler(settings) as shuffler:
            yield relay, shuffler


async def campaign_to(relay, make_account, handles, shop=None, name="offer"):
    """A campaign copy for each of ``handles`` (accounts made on first use), synced: stored,
    acked, and its token taken."""
    if shop is None:
        shop = await make_account("acme", relay, business=True)
        await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER.model_copy(update={"name": name}))
    persons = []
    for handle in handles:
        persons.append(await make_account(handle, relay))
    rows = [AudienceRow(line=i + 2, handle=h, variables={"name": h}) for i, h in enumerate(handles)]
    run = await run_campaign(
        shop.api, shop.profile.keys, "acme", template, Audience(rows=rows), budget=5_000_000
    )
    for person in persons:
        assert len((await person.sync()).stored) == 1
    return shop, persons, run.campaign.id


def due_now(person, shuffler) -> None:
    """Its reports' moments have come, and they go through the shuffler."""
    person.signals.shuffler_url = shuffler.url
    with Session(person.store.engine) as s:
        for row in s.exec(select(PendingSignal)):
            row.send_after = 0
            s.add(row)
        s.commit()


async def flush(person) -> Exception | None:
    """Send the person's due report; what went wrong, if anything (nothing may be raised
    past the agent but its own errors: a traceback is never the answer)."""
    # Past any random delay, and past the gap after the device's previous report.
    moment = max(2e10, person.signals.next_send_at() or 0)
    try:
        await person.signals.flush(now=moment)
    except Exception as exc:  # the test looks at which one it was
        return exc
    return None


def reports_at_relay(relay: RecordingRelay):
    """Every report the relay received, in the shuffler's batches."""
    found = []
    for ex in relay.exchanges:
        if ex.method == "POST" and ex.path == SHUFFLED_PATH and ex.status == 200:
            found += [decode_report(r.encode()) for r in json.loads(ex.body)["reports"]]
    return found


def sent_reports(person) -> list[dict]:
    return [e for e in person.ledger.entries() if e["url"].endswith("/v1/reports")]


def counted(relay, campaign_id: str) -> int:
    with Session(relay.app.state.engine) as session:
        return tally_of(session, campaign_id)[0]


def her_own_key(session: Session, handle: str, campaign_id: str) -> IssuerKey:
    """The key a curious relay keeps for one person, to tag her report."""
    return IssuerKey.derive(
        relay_signals.master_secret(session), f"campaign:{campaign_id}:tag:{handle}"
    )


def tagging(target: str):
    """``server.signals.issuing_key`` as a curious relay would run it: ``target`` gets a key
    of her own (the proof still verifies: it is made with the key it names), everyone else
    the campaign's."""

    def issuing_key(session: Session, person: str, campaign_id: str) -> IssuerKey:
        if person == target:
            return her_own_key(session, person, campaign_id)
        return relay_signals.campaign_key(session, campaign_id)

    return issuing_key


def named_by_her_key(relay, handle: str, campaign_id: str) -> list:
    """The reports the curious relay can attribute to ``handle``: those her key verifies."""
    with Session(relay.app.state.engine) as session:
        key = her_own_key(session, handle, campaign_id)
    return [
        r
        for r in reports_at_relay(relay)
        if r.campaign_id == campaign_id and verify_token(key, r.token.input, r.token.output)
    ]


# --- (a) a key of her own --------------------------------------------------------------------


async def test_a_key_of_her_own_is_caught_and_her_report_never_leaves(
    relay_and_shuffler, make_account, monkeypatch, home, capsys
):
    relay, shuffler = relay_and_shuffler
    monkeypatch.setattr(relay_signals, "issuing_key", tagging("alice"))
    _, persons, campaign_id = await campaign_to(relay, make_account, ["alice", "bob", "carol"])
    alice = persons[0]
    outcome = {}
    for person in persons:
        due_now(person, shuffler)
        outcome[person.profile.handle] = await flush(person)
    shuffler.forward_ready(minimum=1)

    # The attack: the relay tries alice's own key on every report it received. With her
    # device's check, no report of hers is there to be named.
    assert named_by_her_key(relay, "alice", campaign_id) == []
    assert sent_reports(alice) == []
    # The others' reports still flow, and count.
    assert outcome["bob"] is None and outcome["carol"] is None
    assert counted(relay, campaign_id) == 2

    # Her device says why, in words, and keeps the report (never sent, never retried).
    from client.signals import KeyCheckFailed

    assert isinstance(outcome["alice"], KeyCheckFailed)
    [problem] = alice.signals.problems()
    assert problem.reason == "key_mismatch" and problem.campaign_id == campaign_id
    assert "not the key" in problem.detail
    assert alice.signals.pending() == 0
    assert await flush(alice) is None  # withheld for good: nothing left to send
    assert sent_reports(alice) == []

    # `sealpost inbox` shows it, in words, every time, until the person has seen it.
    args = ["--home", str(home), "inbox", "--profile", "alice", "--no-sync"]
    assert await asyncio.to_thread(main, args) == 0
    shown = capsys.readouterr().out
    assert f"⚠ interaction report for campaign {campaign_id} withheld (key_mismatch" in shown
    assert "Traceback" not in shown
    assert await asyncio.to_thread(main, [*args, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)["signal_problems"]
    assert listed["reason"] == "key_mismatch" and listed["detail"] == problem.detail


# --- (b) a log rewritten to agree with her key --------------------------------------------------


def rewrite_log(relay, campaign_id: str, public_key: bytes) -> None:
    """What an operator with the database and the log key does to make the published log
    agree with the key it gave one person: replace the campaign's entry and chain every later
    entry again (the head is signed on each read, with the key the relay holds)."""
    with Session(relay.app.state.engine) as session:
        rows = list(session.exec(select(TokenLogEntry).order_by(col(TokenLogEntry.idx))))
        prev = GENESIS
        for row in rows:
            if row.campaign_id == campaign_id:
                row.public_key = b64encode(public_key)
            entry = KeyLogEntry(
                index=row.idx,
                campaign_id=row.campaign_id,
                public_key=row.public_key,
                valid_from=row.valid_from,
                prev=prev,
            )
            row.prev, row.hash = prev, entry_hash(entry)
            prev = row.hash
            session.add(row)
        session.commit()


@pytest.fixture
def clocked_relay_and_shuffler(sqlite_url: str, tmp_path: Path, clock):
    """As ``relay_and_shuffler``, on a clock the test moves (to release scheduled copies)."""
    key_path = tmp_path / "shuffler.key"
    public = public_key_b64(load_or_create(key_path))
    settings = relay_settings(sqlite_url, shuffler_keys=[public], dispatch_interval_s=3600)
    with RecordingRelay(settings, clock=clock) as relay:
        shuffler_settings = ShufflerSettings(
            db=tmp_path / "shuffler.db",
            relay=relay.url,
            key_path=key_path,
            batch=2,
            auto_forward=False,
            key_log_max_age_s=0,
            key_log_refresh_s=0,
        )
        with EmbeddedShuffler(shuffler_settings) as shuffler:
            yield relay, shuffler


async def test_a_log_rewritten_to_agree_with_her_key_is_a_fork(
    clocked_relay_and_shuffler, clock, make_account, monkeypatch
):
    relay, shuffler = clocked_relay_and_shuffler
    shop = await make_account("acme", relay, business=True)
    await shop.api.top_up(10_000_000)
    alice = await make_account("alice", relay)
    rows = [AudienceRow(line=2, handle="alice", variables={"name": "Alice"})]
    templates = [
        await shop.api.register_template(OFFER.model_copy(update={"name": n})) for n in "ab"
    ]
    first = await run_campaign(
        shop.api, shop.profile.keys, "acme", templates[0], Audience(rows=rows), budget=10**6
    )
    hour = 3_600_000
    second = await run_campaign(
        shop.api,
        shop.profile.keys,
        "acme",
        templates[1],
        Audience(rows=list(rows)),
        budget=10**6,
        send_at=clock.now_ms() + hour,
    )
    assert len((await alice.sync()).stored) == 1  # the first campaign's copy; the second waits
    due_now(alice, shuffler)
    # Her first report goes: the log she checks it with lists both campaigns' keys, honestly.
    assert await flush(alice) is None
    assert len(sent_reports(alice)) == 1

    # Now the relay turns: her copy of the second campaign gets a token under a key of her
    # own, and the published log is rewritten to list that key, so that the key she was
    # given and the log's agree.
    monkeypatch.setattr(relay_signals, "issuing_key", tagging("alice"))
    clock.advance(hour)
    relay.app.state.dispatcher.run_once()
    assert len((await alice.sync()).stored) == 1
    with Session(relay.app.state.engine) as session:
        tag = her_own_key(session, "alice", second.campaign.id)
    rewrite_log(relay, second.campaign.id, tag.public_key)
    with Session(relay.app.state.engine) as session:
        rewritten = token_log.current(session)
    # On its own the rewritten log is well formed and agrees with her key: only a device
    # that remembers the log it saw before can tell.
    assert verify_log(rewritten).keys[second.campaign.id] == b64encode(tag.public_key)

    due_now(alice, shuffler)
    outcome = await flush(alice)
    shuffler.forward_ready(minimum=1)
    assert named_by_her_key(relay, "alice", second.campaign.id) == []
    assert len(sent_reports(alice)) == 1  # the first one only

    from client.signals import KeyCheckFailed

    assert isinstance(outcome, KeyCheckFailed)
    [problem] = alice.signals.problems()
    assert problem.reason == "fork" and problem.campaign_id == second.campaign.id
    # The evidence: two heads signed with the relay's log key that cannot both be true.
    evidence = json.loads(problem.evidence)
    seen, served = KeyLogHead(**evidence["seen"]), KeyLogHead(**evidence["served"])
    assert seen.log_key == served.log_key == rewritten.head.log_key
    assert served == rewritten.head and seen.size == 2 and seen.hash != served.hash
    assert first.campaign.id != second.campaign.id


# --- (c) an honest relay ------------------------------------------------------------------------


async def test_with_an_honest_relay_reports_flow_and_the_log_comes_through_the_shuffler(
    sqlite_url, tmp_path, make_account
):
    key_path = tmp_path / "shuffler.key"
    public = public_key_b64(load_or_create(key_path))
    with RecordingRelay(relay_settings(sqlite_url, shuffler_keys=[public])) as relay:
        settings = ShufflerSettings(
            db=tmp_path / "shuffler.db",
            relay=relay.url,
            key_path=key_path,
            batch=3,
            auto_forward=False,
            key_log_refresh_s=0,  # fetched when the first device asks, then held
        )
        with EmbeddedShuffler(settings) as shuffler:
            _, persons, campaign_id = await campaign_to(
                relay, make_account, ["alice", "bob", "carol"]
            )
            for person in persons:
                due_now(person, shuffler)
                assert await flush(person) is None
                assert person.signals.problems() == []
            assert shuffler.forward_ready().batches == [3]
            assert counted(relay, campaign_id) == 3

            # Each device fetched the log from the shuffler, anonymously; the relay got one
            # request for it, from the shuffler, and served everyone that same copy.
            for person in persons:
                [fetched] = [e for e in person.ledger.entries() if "key-log" in e["url"]]
                assert fetched["url"].startswith(shuffler.url + SHUFFLER_KEY_LOG_PATH)
                assert fetched["method"] == "GET" and fetched["headers"]["via"] == "shuffler"
                assert not {"Sealpost-Signature", "Sealpost-Handle"} & set(fetched["headers"])
            asked = [ex for ex in relay.exchanges if ex.path == KEY_LOG_PATH]
            assert len(asked) == 1 and asked[0].header("sealpost-handle") is None
            # The log lists the key anyone can fetch for the campaign.
            log = KeyLog.model_validate_json(asked[0].response)
            [entry] = log.entries
            published = await persons[0].api.request("GET", f"/v1/signals/keys/{campaign_id}")
            assert entry.campaign_id == campaign_id
            assert entry.public_key == published["public_key"]


# --- the operator's fingerprint, and keys logged at start ---------------------------------------


async def test_devices_pin_the_fingerprint_the_operator_prints(
    relay_and_shuffler, sqlite_url, make_account, monkeypatch, capsys
):
    relay, shuffler = relay_and_shuffler
    assert main(["relay", "--db", sqlite_url, "--print-token-log-key"]) == 0
    printed = capsys.readouterr().out.strip()
    with Session(relay.app.state.engine) as session:
        head = token_log.current(session).head
    assert printed == log_key_fingerprint(head.log_key)

    # alice pins what the operator published; bob was told another fingerprint (or the log
    # he is served is signed by someone else's key): his report stays with him.
    monkeypatch.setenv("SEALPOST_TOKEN_LOG_KEY_FINGERPRINT", printed)
    shop, [alice], _ = await campaign_to(relay, make_account, ["alice"])
    monkeypatch.setenv("SEALPOST_TOKEN_LOG_KEY_FINGERPRINT", "ab" * 32)
    _, [bob], _ = await campaign_to(relay, make_account, ["bob"], shop=shop, name="other")
    for person in (alice, bob):
        due_now(person, shuffler)
    assert await flush(alice) is None and len(sent_reports(alice)) == 1
    from client.signals import KeyCheckFailed

    assert isinstance(await flush(bob), KeyCheckFailed) and sent_reports(bob) == []
    [problem] = bob.signals.problems()
    assert problem.reason == "log_key_not_pinned"
    assert "SEALPOST_TOKEN_LOG_KEY_FINGERPRINT" in problem.detail


async def test_campaigns_from_before_the_log_get_their_keys_at_start(sqlite_url, make_account):
    with EmbeddedRelay(relay_settings(sqlite_url)) as relay:
        shop, _, first = await campaign_to(relay, make_account, ["alice"])
        _, _, second = await campaign_to(relay, make_account, ["bob"], shop=shop, name="other")
        with Session(relay.app.state.engine) as session:  # as a relay before the log left it
            for row in session.exec(select(TokenLogEntry)):
                session.delete(row)
            session.commit()
    with EmbeddedRelay(relay_settings(sqlite_url)) as relay:
        with Session(relay.app.state.engine) as session:
            view = verify_log(token_log.current(session))
            published = {c: relay_signals.campaign_key(session, c).public_key for c in view.keys}
    assert list(view.keys) == [first, second]  # in the order they were created
    assert {c: b64encode(k) for c, k in published.items()} == view.keys
