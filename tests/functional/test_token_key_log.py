"""Keys the device can check (issue #15, item 3): a curious relay that is active on keys.

A token's DLEQ proof shows only that the relay used the key it named in the same answer. A
relay that names one person a key of her own (and evaluates her token with it) passes that
check, and can then tell her report from everyone else's: it verifies under her key and no
other. These tests run a real relay and a real shuffler on loopback and make the relay do what
an adversarial operator would (its issuing function replaced, its stored key log rewritten),
then check that the device notices and keeps the report to itself.
"""

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from client.signals import PendingSignal
from sealpost.audit.recorder import RecordingRelay
from server import signals as relay_signals
from server.signals import tally_of
from shared.shuffled import SHUFFLED_PATH, public_key_b64
from shared.signals import decode_report
from shared.templates import TemplateDraft
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
    try:
        await person.signals.flush(now=2e10)
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


@pytest.mark.xfail(strict=True, reason="the attack succeeds: the device does not check keys yet")
async def test_a_key_of_her_own_is_caught_and_her_report_never_leaves(
    relay_and_shuffler, make_account, monkeypatch
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
