"""The shuffler: a curious relay's timing attack on anonymous reports, before and after.

A curious relay keeps each request's arrival time (the audit's recording layer, which stamps
every exchange) and links each anonymous report to the account whose signed request came
just before it. Sending straight to the relay, as the app used to (a signed GET /v1/prefs,
then the due reports milliseconds later), it links nearly every report. Through the shuffler,
even if devices still sent right after their own signed traffic (the worst case for it), the
relay gets only batches of at least B reports in an order unrelated to the sending order, and
the same linker does no better than chance.
"""

import asyncio
import json
import math
import random
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from client.relay_api import RelayError
from client.signals import DIRECT_WARNING, PendingSignal
from sealpost.audit.recorder import Exchange, RecordingRelay
from sealpost.cli import main
from server.signals import tally_of
from shared.auth import sign_request
from shared.shuffled import SHUFFLED_PATH, ShuffledBatch, sign_batch
from shared.signals import DEFAULT_REPORT_EPSILON, decode_report
from shared.templates import TemplateDraft
from shuffler.embedded import EmbeddedShuffler
from shuffler.forward import ForwardError, batch_sizes
from shuffler.keys import load_or_create
from shuffler.settings import ShufflerSettings
from tests.conftest import relay_settings

OFFER = TemplateDraft(
    name="offer", category="marketing", body="Hi {{name}}, 20% off today.", examples={"name": "Ana"}
)
PERSONS = 40
B = 10


def counted(relay: RecordingRelay, campaign_id: str) -> int:
    with Session(relay.app.state.engine) as session:
        return tally_of(session, campaign_id)[0]


async def campaign_to(relay, make_account, n, prefix="p"):
    """A business, ``n`` persons, one campaign copy each, stored, acked and tokened."""
    shop = await make_account("acme", relay, business=True)
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    persons = [await make_account(f"{prefix}{i:03d}", relay) for i in range(n)]
    rows = [
        AudienceRow(line=i + 2, handle=p.profile.handle, variables={"name": f"N{i}"})
        for i, p in enumerate(persons)
    ]
    run = await run_campaign(
        shop.api, shop.profile.keys, "acme", template, Audience(rows=rows), budget=5_000_000
    )
    for person in persons:
        assert len((await person.sync()).stored) == 1
    return persons, run.campaign.id


def token_of(person) -> str:
    with Session(person.store.engine) as s:
        return s.exec(select(PendingSignal)).one().token_input


def due_now(person) -> None:
    """The report's random moment has come (as if the day had passed)."""
    with Session(person.store.engine) as s:
        row = s.exec(select(PendingSignal)).one()
        row.send_after = 0
        s.add(row)
        s.commit()


async def post(url: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url, **kwargs)


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url)


# --- the curious relay's linker ----------------------------------------------------------------


def report_requests(exchanges: list[Exchange]) -> list[tuple[Exchange, list[str]]]:
    """Every request that brought reports to the relay, direct or shuffled, with its reports
    in the order they arrived."""
    found = []
    for ex in exchanges:
        if ex.method == "POST" and ex.path in ("/v1/signals", SHUFFLED_PATH) and ex.status == 200:
            tokens = [decode_report(r.encode()).token_input for r in json.loads(ex.body)["reports"]]
            found.append((ex, tokens))
    return found


def link_by_timing(exchanges: list[Exchange]) -> dict[str, str]:
    """The relay's guess of who sent each report (token input -> handle).

    A request carrying k reports is matched with the k accounts whose signed requests came
    most recently before it, in the order they spoke: the earliest of them gets the first
    report, and so on, which is right for a shuffler that forwards in arrival order (for a
    request with one report, it is simply the account that spoke just before). Each account
    is guessed once.
    """
    guesses: dict[str, str] = {}
    used: set[str] = set()
    for request, tokens in report_requests(exchanges):
        before = sorted(
            (
                ex
                for ex in exchanges
                if ex.at <= request.at and ex.header("sealpost-handle") is not None
            ),
            key=lambda ex: ex.at,
            reverse=True,
        )
        recent: list[str] = []
        for ex in before:
            handle = ex.header("sealpost-handle") or ""
            if handle not in used and handle not in recent and handle != "acme":
                recent.append(handle)
            if len(recent) == len(tokens):
                break
        for token, handle in zip(tokens, reversed(recent), strict=False):
            guesses[token] = handle
            used.add(handle)
    return guesses


def spearman(xs: list[int], ys: list[int]) -> float:
    n = len(xs)

    def ranks(values: list[int]) -> list[int]:
        order = sorted(range(n), key=values.__getitem__)
        out = [0] * n
        for rank, i in enumerate(order):
            out[i] = rank
        return out

    rx, ry = ranks(xs), ranks(ys)
    return 1 - 6 * sum((a - b) ** 2 for a, b in zip(rx, ry, strict=True)) / (n * (n * n - 1))


async def app_opens(persons, rng: random.Random) -> list[str]:
    """Each person opens the app once, in random order: a signed GET /v1/prefs (as the app
    does on connect), then whatever its signal agent sends at once. Returns the sending order
    (handles of reports that left)."""
    order = []
    for person in rng.sample(persons, len(persons)):
        await person.api.preferences()
        if await person.signals.flush() is not None:
            order.append(person.profile.handle)
        await asyncio.sleep(0.005)  # app opens are spread out; the relay's clock tells them apart
    return order


# --- the attack, before and after ---------------------------------------------------------------


async def test_a_curious_relay_links_direct_reports_by_timing(sqlite_url, make_account):
    settings = relay_settings(sqlite_url, allow_direct_signals=True)
    with RecordingRelay(settings) as relay:
        persons, campaign_id = await campaign_to(relay, make_account, PERSONS)
        truth = {token_of(p): p.profile.handle for p in persons}
        for person in persons:
            due_now(person)
            assert person.signals.shuffler_url is None  # the old way: straight to the relay
            # The app as it was: reports right after its own signed request.
            person.signals.settings.quiet_after_signed_s = 0
        sent = await app_opens(persons, random.Random(1))
        assert len(sent) == PERSONS and counted(relay, campaign_id) == PERSONS

        guesses = link_by_timing(relay.exchanges)
        right = sum(guesses.get(token) == handle for token, handle in truth.items())
        print(f"direct: the timing linker named the sender of {right}/{PERSONS} reports")
        # Nearly every report names its sender: the relay saw it milliseconds after that
        # account's request (and, on a real network, from the same address).
        assert right / PERSONS >= 0.9, right
        # And the privacy ledger told each person so.
        [entry] = [e for e in persons[0].ledger.entries() if e["url"].endswith("/v1/signals")]
        assert entry["headers"]["warning"] == DIRECT_WARNING


async def test_through_the_shuffler_the_same_linker_is_at_chance(
    sqlite_url, make_account, tmp_path
):
    key_path = tmp_path / "shuffler.key"
    public = sign_batch(load_or_create(key_path), b"")["Sealpost-Shuffler-Key"]
    settings = relay_settings(sqlite_url, shuffler_keys=[public])
    with RecordingRelay(settings) as relay:
        shuffler_settings = ShufflerSettings(
            db=tmp_path / "shuffler.db",
            relay=relay.url,
            batch=B,
            key_path=key_path,
            auto_forward=False,  # the test says when: after every B reports
        )
        with EmbeddedShuffler(shuffler_settings) as shuffler:
            persons, campaign_id = await campaign_to(relay, make_account, PERSONS)
            truth = {token_of(p): p.profile.handle for p in persons}
            for person in persons:
                due_now(person)
                person.signals.shuffler_url = shuffler.url
                # Worst case for the shuffler: devices still send right after their own
                # signed request, as the app used to (the real client waits a minute).
                person.signals.settings.quiet_after_signed_s = 0
            rng = random.Random(2)
            sending_order: list[str] = []
            for start in range(0, PERSONS, B):
                group = persons[start : start + B]
                sending_order += await app_opens(group, rng)
                # Nothing reaches the relay while fewer than B are held...
                assert shuffler.forward_ready(minimum=B + 1).batches == []
                assert not report_requests(relay.exchanges[-3:])
                # ...and then all B at once, in one signed batch.
                assert shuffler.forward_ready().batches == [B]
            assert counted(relay, campaign_id) == PERSONS
            assert shuffler.held() == 0

            requests = report_requests(relay.exchanges)
            # The relay got reports only in shuffled batches of at least B, never one alone.
            assert [ex.path for ex, _ in requests] == [SHUFFLED_PATH] * (PERSONS // B)
            assert all(len(tokens) >= B for _, tokens in requests)
            assert all(ex.header("sealpost-handle") is None for ex, _ in requests)

            guesses = link_by_timing(relay.exchanges)
            right = sum(guesses.get(token) == handle for token, handle in truth.items())
            print(f"shuffled: the timing linker named the sender of {right}/{PERSONS} reports")
            # Within a batch the linker can only guess: 1 in B on average. Chance plus three
            # standard deviations of a binomial(PERSONS, 1/B).
            chance = PERSONS / B
            assert right <= chance + 3 * math.sqrt(PERSONS * (1 / B) * (1 - 1 / B)), right

            # Arrival order within the batches is independent of the sending order.
            position = {t: i for _, tokens in requests for i, t in enumerate(tokens)}
            sent_index = {h: i for i, h in enumerate(sending_order)}
            xs, ys = [], []
            for token, handle in truth.items():
                xs.append(sent_index[handle] % B)
                ys.append(position[token])
            rho = spearman(xs, ys)
            print(f"shuffled: Spearman(sending order, batch position) = {rho:+.3f}")
            assert abs(rho) < 4 / math.sqrt(PERSONS - 1)

            # The shuffler's page shows the central epsilon next to the local one.
            status = (await get(shuffler.url + "/v1/status")).json()
            assert status["forwarded"]["reports"] == PERSONS
            assert status["privacy"]["at_batch_size"]["n"] == B
            assert "held" not in json.dumps(status)


# --- the relay's side ---------------------------------------------------------------------------


async def test_the_relay_counts_only_signed_shuffler_batches(sqlite_url, make_account, tmp_path):
    key_path = tmp_path / "shuffler.key"
    key = load_or_create(key_path)
    public = sign_batch(key, b"")["Sealpost-Shuffler-Key"]
    settings = relay_settings(
        sqlite_url, shuffler_keys=[public], shuffler_url="http://shuffler.example"
    )
    with RecordingRelay(settings) as relay:
        persons, campaign_id = await campaign_to(relay, make_account, 3)
        for person in persons:
            due_now(person)
        # Without a shuffler the device's report is refused, and stays on the device.
        with pytest.raises(RelayError) as err:
            await persons[0].signals.flush(now=2e10)
        assert err.value.status == 403 and err.value.code == "use_the_shuffler"
        assert "http://shuffler.example" in err.value.message
        assert persons[0].signals.pending() == 1
        # Tried again, it is the same report, charged to the person's ε once.
        with pytest.raises(RelayError):
            await persons[0].signals.flush(now=2e10 + 60)
        budget = json.loads((persons[0].profile.dir / "epsilon.json").read_text())
        assert sum(budget["spent"].values()) == pytest.approx(DEFAULT_REPORT_EPSILON)
        reports = [e for e in persons[0].ledger.entries() if e["url"].endswith("/v1/signals")]
        assert len(reports) == 2 and reports[0]["body"] == reports[1]["body"]
        raw = reports[0]["body"]["reports"][0]
        body = ShuffledBatch(reports=[raw]).model_dump_json().encode()
        url = relay.url + SHUFFLED_PATH
        json_type = {"Content-Type": "application/json"}
        # Unsigned, or signed by a key the relay does not trust: refused, nothing counted.
        assert (await post(url, content=body, headers=json_type)).status_code == 401
        stranger = load_or_create(tmp_path / "stranger.key")
        forged = await post(url, content=body, headers={**json_type, **sign_batch(stranger, body)})
        assert forged.status_code == 401
        assert forged.json()["error"]["code"] == "bad_shuffler_signature"
        # A signature over other bytes does not carry over to this body.
        other = sign_batch(key, body + b" ")
        assert (await post(url, content=body, headers={**json_type, **other})).status_code == 401
        # Account credentials have no place on it either.
        as_person = sign_request(persons[1].profile.keys.signing, "p001", "POST", url, body)
        both = {**json_type, **sign_batch(key, body), **as_person}
        assert (await post(url, content=body, headers=both)).status_code == 400
        assert counted(relay, campaign_id) == 0

        good = await post(url, content=body, headers={**json_type, **sign_batch(key, body)})
        assert good.status_code == 200 and good.json() == {"counted": 1, "refused": {}}
        # The same batch again (a shuffler that crashed before forgetting it): counted once.
        again = await post(url, content=body, headers={**json_type, **sign_batch(key, body)})
        assert again.json() == {"counted": 0, "refused": {"0": "token_spent"}}
        assert counted(relay, campaign_id) == 1


def test_a_relay_with_no_shuffler_key_takes_no_batch(sqlite_url, tmp_path):
    key = load_or_create(tmp_path / "k")
    body = b'{"reports":["x"]}'
    with RecordingRelay(relay_settings(sqlite_url)) as relay:
        answer = httpx.post(
            relay.url + SHUFFLED_PATH,
            content=body,
            headers={"Content-Type": "application/json", **sign_batch(key, body)},
        )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "no_shuffler_configured"


def test_shuffler_keys_come_comma_separated_from_the_environment(monkeypatch, tmp_path):
    from server.settings import RelaySettings

    keys = [
        sign_batch(load_or_create(tmp_path / f"k{i}"), b"")["Sealpost-Shuffler-Key"] for i in (1, 2)
    ]
    monkeypatch.setenv("SEALPOST_RELAY_SHUFFLER_KEYS", f"{keys[0]}, {keys[1]}")
    assert RelaySettings().shuffler_keys == keys
    monkeypatch.setenv("SEALPOST_RELAY_SHUFFLER_KEYS", "not-a-key")
    with pytest.raises(ValueError, match="Ed25519"):
        RelaySettings()


# --- the shuffler's side ------------------------------------------------------------------------


async def test_the_shuffler_holds_one_report_per_token_and_never_loses_one(
    sqlite_url, make_account, tmp_path
):
    key_path = tmp_path / "shuffler.key"
    public = sign_batch(load_or_create(key_path), b"")["Sealpost-Shuffler-Key"]
    with RecordingRelay(relay_settings(sqlite_url, shuffler_keys=[public])) as relay:
        persons, campaign_id = await campaign_to(relay, make_account, 3)
        shuffler_settings = ShufflerSettings(
            db=tmp_path / "shuffler.db",
            relay=relay.url,
            batch=3,
            key_path=key_path,
            auto_forward=False,
        )
        with EmbeddedShuffler(shuffler_settings) as shuffler:
            for person in persons:
                due_now(person)
                person.signals.shuffler_url = shuffler.url
                assert (await person.signals.flush(now=2e10)).counted == 1
            entry = next(e for e in persons[0].ledger.entries() if e["url"].endswith("/reports"))
            assert entry["headers"]["via"] == "shuffler" and "warning" not in entry["headers"]
            report = entry["body"]["report"]
            url = shuffler.url + "/v1/reports"
            # A device that resends after a lost answer: 202 again, still held once.
            assert (await post(url, json={"report": report})).status_code == 202
            assert shuffler.held() == 3
            # Credentials, a cookie, or anything but a report are refused.
            signed = sign_request(persons[0].profile.keys.signing, "p000", "POST", url, b"")
            assert (await post(url, json={"report": report}, headers=signed)).status_code == 400
            refused = await post(url, json={"report": report}, headers={"Cookie": "a=b"})
            assert refused.status_code == 400
            assert (await post(url, json={"report": "{}"})).status_code == 422
            assert (await post(url, json={"report": report, "handle": "p000"})).status_code == 422
            # What it keeps: the report and a random order key; no time, no address.
            columns = shuffler.shuffler.store.engine.connect().exec_driver_sql(
                "SELECT name FROM pragma_table_info('shuffler_report')"
            )
            assert {c for (c,) in columns} == {"order_key", "token_input", "report"}

            # The relay goes down (after devices checked their keys with the key log the
            # shuffler holds): the batch stays held, nothing is lost.
            shuffler.shuffler.forwarder.relay_url = "http://127.0.0.1:9"  # nothing listens
            with pytest.raises(ForwardError):
                shuffler.forward_ready()
            assert shuffler.held() == 3
            shuffler.shuffler.forwarder.relay_url = relay.url
            assert shuffler.forward_ready().batches == [3]
            assert shuffler.held() == 0 and counted(relay, campaign_id) == 3
            # A crash after the relay accepted but before the shuffler forgot: sent again,
            # refused as spent, counted once.
            shuffler.shuffler.store.add(decode_report(report.encode()).token_input, report)
            shuffler.shuffler.store.add("x" * 43 + "=", report)
            shuffler.shuffler.store.add("y" * 43 + "=", report)
            done = shuffler.forward_ready()
            assert done.counted == 0 and done.refused["token_spent"] == 3
            assert shuffler.held() == 0 and counted(relay, campaign_id) == 3


async def test_the_shuffler_forwards_on_its_own_once_b_are_held(sqlite_url, make_account, tmp_path):
    key_path = tmp_path / "shuffler.key"
    public = sign_batch(load_or_create(key_path), b"")["Sealpost-Shuffler-Key"]
    with RecordingRelay(relay_settings(sqlite_url, shuffler_keys=[public])) as relay:
        persons, campaign_id = await campaign_to(relay, make_account, 3)
        shuffler_settings = ShufflerSettings(
            db=tmp_path / "shuffler.db",
            relay=relay.url,
            batch=3,
            max_hold_s=0.2,
            key_path=key_path,
        )
        with EmbeddedShuffler(shuffler_settings) as shuffler:
            for person in persons[:2]:
                due_now(person)
                person.signals.shuffler_url = shuffler.url
                await person.signals.flush(now=2e10)
            await asyncio.sleep(0.5)
            assert counted(relay, campaign_id) == 0  # two held: fewer than B, nothing goes
            for person in persons[2:]:
                due_now(person)
                person.signals.shuffler_url = shuffler.url
                await person.signals.flush(now=2e10)
            for _ in range(200):  # the batch leaves within max_hold_s
                if shuffler.held() == 0:  # forgotten once the relay answered
                    break
                await asyncio.sleep(0.05)
            assert counted(relay, campaign_id) == 3
            [batch] = [ex for ex in relay.exchanges if ex.path == SHUFFLED_PATH]
            assert len(json.loads(batch.body)["reports"]) == 3
            assert shuffler.held() == 0


def test_batches_are_cut_so_none_is_smaller_than_b():
    assert batch_sizes(19, 20) == []
    assert batch_sizes(20, 20) == [20]
    assert batch_sizes(2500, 20, 1000) == [1000, 1000, 500]
    assert batch_sizes(2010, 20, 1000) == [1000, 990, 20]
    assert all(min(batch_sizes(n, 20, 1000)) >= 20 for n in range(20, 3000, 7))
    assert all(sum(batch_sizes(n, 20, 1000)) == n for n in range(20, 3000, 7))


# --- the device's timing ------------------------------------------------------------------------


async def test_a_device_never_sends_a_report_near_its_own_signed_traffic(
    sqlite_url, make_account, tmp_path
):
    key_path = tmp_path / "shuffler.key"
    with RecordingRelay(relay_settings(sqlite_url)) as relay:
        shuffler_settings = ShufflerSettings(
            db=tmp_path / "shuffler.db", relay=relay.url, key_path=key_path, auto_forward=False
        )
        with EmbeddedShuffler(shuffler_settings) as shuffler:
            shop = await make_account("acme", relay, business=True)
            await shop.api.top_up(10_000_000)
            template = await shop.api.register_template(OFFER)
            other = await shop.api.register_template(OFFER.model_copy(update={"name": "b"}))
            bob = await make_account("bob", relay)
            for t in (template, other):
                rows = [AudienceRow(line=2, handle="bob", variables={"name": "Bob"})]
                await run_campaign(
                    shop.api, shop.profile.keys, "acme", t, Audience(rows=rows), budget=10**6
                )
            await bob.sync()
            agent = bob.signals
            agent.shuffler_url = shuffler.url
            with Session(bob.store.engine) as s:
                for row in s.exec(select(PendingSignal)):
                    row.send_after = 0
                    s.add(row)
                s.commit()
            signed_at = agent.api.last_signed_at
            assert signed_at is not None
            # Due, but the device just spoke to the relay as itself: nothing leaves.
            assert await agent.flush(now=signed_at + 59) is None
            assert agent.next_send_at() == pytest.approx(signed_at + 60)
            # A minute later one report leaves, alone...
            assert (await agent.flush(now=signed_at + 60)).counted == 1
            assert agent.pending() == 1
            # ...and the next only after a random gap of at least 30 s.
            assert await agent.flush(now=signed_at + 61) is None
            gap = agent.next_send_at() - (signed_at + 60)
            assert gap >= 30
            assert (await agent.flush_due(until=signed_at + 60 + gap)).counted == 1
            assert shuffler.held() == 2
            sent = [e for e in bob.ledger.entries() if e["url"].endswith("/v1/reports")]
            assert [len(e["body"]) for e in sent] == [1, 1]  # one report per request
            # A later process (`sealpost inbox`) reads the last signed request from the ledger.
            assert bob.ledger.last_signed_at() == pytest.approx(signed_at, abs=1)


async def test_inbox_sends_a_due_report_before_it_syncs(
    sqlite_url, make_account, tmp_path, home: Path, capsys, monkeypatch
):
    key_path = tmp_path / "shuffler.key"
    public = sign_batch(load_or_create(key_path), b"")["Sealpost-Shuffler-Key"]
    with RecordingRelay(relay_settings(sqlite_url, shuffler_keys=[public])) as relay:
        shuffler_settings = ShufflerSettings(
            db=tmp_path / "shuffler.db", relay=relay.url, key_path=key_path, auto_forward=False
        )
        with EmbeddedShuffler(shuffler_settings) as shuffler:
            [bob], _ = await campaign_to(relay, make_account, 1, prefix="bob")
            due_now(bob)
            # The device's last signed request was over a minute ago.
            pacing = bob.profile.dir / "signal_pacing.json"
            pacing.write_text(json.dumps({"next_report_at": 0}))
            ledger = bob.profile.ledger_path
            lines = ledger.read_text().splitlines()
            old = [json.dumps({**json.loads(x), "at": 0}) for x in lines]
            ledger.write_text("\n".join(old) + "\n")

            monkeypatch.setenv("SEALPOST_SHUFFLER_URL", shuffler.url)
            args = ["--home", str(home), "inbox", "--profile", "bob000", "--json"]
            assert await asyncio.to_thread(main, args) == 0
            out = json.loads(capsys.readouterr().out)
            assert out["signals"]["sent"] == 1 and out["signals"]["via"] == "shuffler"
            assert shuffler.held() == 1
            # The report went before the sync's signed requests, never right after them.
            entries = [json.loads(x) for x in ledger.read_text().splitlines()]
            report_at = next(i for i, e in enumerate(entries) if e["url"].endswith("/reports"))
            assert "Sealpost-Signature" not in entries[report_at]["headers"]
            # No signed request in the minute before it; the sync's signed ones come after.
            signed_before = [
                e["at"] for e in entries[:report_at] if "Sealpost-Signature" in e["headers"]
            ]
            assert max(signed_before) <= entries[report_at]["at"] - 60_000
            assert any("Sealpost-Signature" in e["headers"] for e in entries[report_at + 1 :])


def test_the_shuffler_command_teaches_and_prints_its_key(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["shuffler", "--help"])
    text = capsys.readouterr().out
    for words in ("--batch", "SEALPOST_RELAY_SHUFFLER_KEYS", "collude", "/v1/status"):
        assert words in text
    key = tmp_path / "k"
    assert main(["shuffler", "--print-key", "--key", str(key)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == sign_batch(load_or_create(key), b"")["Sealpost-Shuffler-Key"]
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_the_shuffler_shares_no_code_with_the_relay_or_the_client():
    # Run by another party: it depends on the protocol (shared/) only.
    import ast

    import shuffler

    root = Path(shuffler.__file__).parent
    files = [*root.glob("*.py"), root.parent / "shared" / "shuffled.py"]
    files.append(root.parent / "shared" / "shuffle_bound.py")
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"server", "client", "sealpost"}, (path, name)
