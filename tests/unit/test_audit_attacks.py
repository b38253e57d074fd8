"""The audit's attacks on hand-made inputs: each finds what it is for and nothing else, with no
relay and no network (the functional tests and ``--selftest`` play them on real runs)."""

import base64
import dataclasses
import hashlib
import random
import secrets
from itertools import pairwise

import pytest

from client.signals import SignalSettings
from sealpost.audit.app_opens import DAY_S, TICK_S, draw_opens, tick_at_or_after
from sealpost.audit.attacks import identity, kept, noise, timing, tokens
from sealpost.audit.plants import PLANTS, Patcher, planted
from sealpost.audit.received import Received
from sealpost.audit.report import render_selftest
from sealpost.audit.selftest import Run, SelftestResult
from sealpost.audit.stats import binomial_tail, binomial_two_sided
from sealpost.audit.timeline import Timeline
from sealpost.audit.world import Redemption, WorldResult
from shared.signals import NO_SIGNAL, OUTCOMES, decode_report, encode_report, randomize
from shared.tokens import Token

# --- timing -------------------------------------------------------------------------------------


def test_the_declared_rule_is_the_clients_default():
    # The reference the timing attack measures against is the rule the client ships with.
    settings = SignalSettings()
    assert timing.DECLARED == timing.DeclaredRule(
        max_delay_s=settings.max_delay_s,
        quiet_after_signed_s=settings.quiet_after_signed_s,
        min_gap_s=settings.min_gap_s,
        mean_extra_gap_s=settings.mean_extra_gap_s,
    )


def test_app_opens_are_a_few_a_day_at_waking_hours():
    opens = draw_opens(random.Random(3), days=30)
    per_day = len(opens) / 30
    assert 1 <= per_day <= 12
    assert all(0 < end - start <= 12 * TICK_S for start, end in opens)
    assert all(a[1] < b[0] for a, b in pairwise(opens))  # one at a time
    # Awake from 07:00 to 23:00, the start (when campaigns go out) being 09:00.
    hours = {int(start % DAY_S // 3600) for start, _ in opens}
    assert all(h < 14 or h >= 22 for h in hours)
    assert tick_at_or_after(100.0, 100.0) == 160.0  # a minute's quiet after the sync
    assert tick_at_or_after(100.0, 230.0) == 280.0


def _world(persons: int, seed: int) -> list[timing.Person]:
    rng = random.Random(seed)
    found = []
    for i in range(persons):
        opens = [o for o in draw_opens(rng) if o[0] >= 0]
        absolute = tuple((1e9 + a, 1e9 + b) for a, b in opens)
        found.append(timing.Person(f"p{i}", absolute[0][0], absolute, ("a", "b")))
    return found


def _linkage(persons, rule: timing.DeclaredRule, seed: int):
    rng = random.Random(seed)
    sends = timing.declared_sends(persons, rule, rng, end=2e9)
    batches = timing.shuffled_batches(sends, 20, 300.0, rng)
    sent_at = {(h, c): t for t, h, c in sends}
    return timing.timing_linkage(persons, batches, Timeline(), sent_at, 20, 300.0, seed)


def test_devices_following_the_declared_rule_pass_the_timing_attack():
    check = _linkage(_world(80, 1), timing.DECLARED, seed=11)
    assert check.passed, check.violations
    strategies = check.details["strategies"]
    assert set(strategies) == set(timing.STRATEGIES)
    # The design leaks some timing (reports leave while the app is open): reported, not hidden.
    assert strategies["after_opens"]["accuracy"] > strategies["after_opens"]["chance"]
    assert "x chance" in check.measured


def test_reports_sent_minutes_after_delivery_fail_the_timing_attack():
    minutes = dataclasses.replace(timing.DECLARED, max_delay_s=300.0)
    check = _linkage(_world(80, 1), minutes, seed=11)
    assert not check.passed
    assert any(v.startswith("after_delivery:") for v in check.violations)
    assert check.measured.startswith("after_delivery:")


def test_an_unshuffled_batch_or_a_small_one_fails():
    persons = _world(40, 2)
    rng = random.Random(5)
    sends = timing.declared_sends(persons, timing.DECLARED, rng, end=2e9)
    in_order = [
        timing.Batch(b.at, tuple(sorted(b.reports, key=lambda r: sent[(r[1], r[0])])))
        for sent in [{(h, c): t for t, h, c in sends}]
        for b in timing.shuffled_batches(sends, 20, 300.0, rng)
    ]
    sent_at = {(h, c): t for t, h, c in sends}
    check = timing.timing_linkage(persons, in_order, Timeline(), sent_at, 20, 300.0, 5)
    assert any("follows the order of sending" in v for v in check.violations)
    pairs = timing.shuffled_batches(sends, 2, 0.0, rng)
    check = timing.timing_linkage(persons, pairs, Timeline(), sent_at, 20, 300.0, 5)
    assert any("fewer than B = 20" in v for v in check.violations)


# --- identity -----------------------------------------------------------------------------------

PERSON = identity.Identity(
    handle="person0007",
    phones=["+39 345 1234567"],
    keys=[base64.b64encode(b"k" * 32).decode(), base64.b64encode(b"x" * 32).decode()],
)


@pytest.mark.parametrize(
    "blob, what",
    [
        (hashlib.sha256(b"person0007").hexdigest()[:16].encode(), "sha256 of the handle, hex"),
        (hashlib.md5(b"@person0007").hexdigest().upper().encode(), "md5 of @handle, hex"),
        (base64.b64encode(hashlib.sha1(b"person0007").digest()), "sha1 of the handle, base64"),
        (b"id=3451234567&x=1", "phone digits"),
        (b"ua (393451234567)", "phone digits"),
        (b"PERSON0007", "the handle"),
    ],
)
def test_identity_values_are_found_in_text(blob, what):
    forms = identity.identity_forms([PERSON])
    found = identity.search(blob, "here", forms, raw=False)
    assert found and found[0].owner == "person0007"
    assert what in {t.what for t in found}


def test_identity_values_are_found_in_raw_bytes_and_not_in_randomness():
    forms = identity.identity_forms([PERSON])
    digest = hashlib.blake2b(b"+393451234567").digest()
    assert identity.search(secrets.token_bytes(7) + digest[:9], "token", forms)
    assert identity.search(b"3451234567" + secrets.token_bytes(22), "token", forms)
    noise = b"".join(secrets.token_bytes(96) for _ in range(200))
    assert identity.search(noise, "tokens", forms) == []


def test_an_outcome_picked_by_the_handle_is_found_and_a_randomized_one_is_not():
    people = [identity.Identity(handle=f"person{i:04d}") for i in range(300)]

    def picked(handle: str, truth: str, rng: random.Random) -> str:
        return identity.handle_outcome(hashlib.sha256(handle.encode()).digest())

    for send, leaks in ((_randomized, False), (picked, True)):
        world, reports = _signal_world(300, 4, send)
        sender = {r.token_input: r.handle for r in world.redemptions}
        check = identity.identity_values([], reports, people, sender)
        assert check.passed is not leaks, check.violations
        found = check.details["outcome_picked_by_handle_digest"]
        if leaks:
            assert found["sha256"] == sum(r.report.outcome in OUTCOMES for r in reports)
            assert any("sha256 of their sender's handle" in v for v in check.violations)


# --- randomized response ------------------------------------------------------------------------


def _randomized(handle: str, truth: str, rng: random.Random) -> str:
    return randomize(truth, rng=rng)  # type: ignore[arg-type]


def _signal_world(persons: int, seed: int, send=_randomized, spent_send=None):
    """Reports of ``persons`` people with random true outcomes, one in ten with its budget
    spent (reporting ``spent_send``'s value, no_signal by default), the others ``send``'s."""
    rng = random.Random(seed)
    redemptions, reports = [], []
    for i in range(persons):
        handle, truth, spent = f"person{i:04d}", rng.choice(OUTCOMES), i % 10 == 3
        value = (spent_send or (lambda *_: NO_SIGNAL)) if spent else send
        token = Token(rng.randbytes(32), rng.randbytes(64))
        raw = encode_report("cmp_1", "2027-01-04", value(handle, truth, rng), token).decode()
        report = decode_report(raw.encode())
        reports.append(Received(report, raw, None))  # type: ignore[arg-type]
        redemptions.append(
            Redemption(handle, "cmp_1", report.token_input, 0, truth, budget_spent=spent)
        )
    world = WorldResult(
        campaigns={"c": "cmp_1"},
        businesses=[],
        handles=[r.handle for r in redemptions],
        message_ids=[],
        canaries=[],
        true_counts={},
        reporters={"cmp_1": persons},
        redemptions=redemptions,
        published={},
        budgets={},
        targeted={},
        anonymous_requests=persons,
        timings={},
    )
    return world, reports


def test_randomized_outcomes_pass_at_the_rates_of_k_ary_response():
    check = noise.randomized_response(*_signal_world(3000, 1))
    assert check.passed, check.violations
    agreement = check.details["agreement"]["randomized"]
    assert set(agreement) == set(OUTCOMES)
    assert all(abs(row["same_as_truth"] - 0.5) < 0.08 for row in agreement.values())
    others = check.details["reported_for_others"]
    assert all(abs(row["reported_as_this"] - 1 / 6) < 0.04 for row in others.values())
    assert check.details["no_signal"]["budget_spent"] == {"reports": 300, NO_SIGNAL: 300}
    assert "a blind guess among 4 gets 25%" in check.measured


def test_an_outcome_without_noise_fails():
    def read_as_is(handle: str, truth: str, rng: random.Random) -> str:
        return truth if truth == "read" else _randomized(handle, truth, rng)

    check = noise.randomized_response(*_signal_world(300, 2, read_as_is))
    assert not check.passed
    assert any("outcome read reported as it is in 100%" in v for v in check.violations)


def test_outcomes_that_ignore_the_truth_fail():
    def uniform(handle: str, truth: str, rng: random.Random) -> str:
        return rng.choice(OUTCOMES)

    check = noise.randomized_response(*_signal_world(3000, 3, uniform))
    assert not check.passed
    assert any("they do not follow the truth" in v for v in check.violations)


def test_a_spent_budget_says_no_signal_and_nothing_else():
    # A device whose budget is spent sends an outcome anyway (spending what it has not).
    check = noise.randomized_response(*_signal_world(300, 5, spent_send=_randomized))
    assert not check.passed
    assert any("devices whose budget is spent carry an outcome" in v for v in check.violations)
    # A device with budget whose outcome went missing.
    silent = noise.randomized_response(*_signal_world(300, 5, lambda *_: NO_SIGNAL))
    assert any(f"of devices with budget say {NO_SIGNAL}" in v for v in silent.violations)


# --- token inputs -------------------------------------------------------------------------------


def test_token_derivations_cover_the_careless_ones():
    found = tokens.derivations("person0007", "cmp_1", ["ab" * 16], PERSON.keys)
    derived = hashlib.sha256(b"person0007:cmp_1").digest()[:16]
    assert found[derived] == "sha256 of handle':'campaign"
    assert hashlib.sha256(bytes.fromhex("ab" * 16)).digest()[:16] in found
    assert secrets.token_bytes(16) not in found


def test_uniform_bytes_pass_and_a_counter_does_not():
    random_inputs = [secrets.token_bytes(32) for _ in range(400)]
    assert tokens.uniformity(random_inputs)[1] > 1e-6
    counters = [i.to_bytes(32, "big") for i in range(400)]
    assert tokens.uniformity(counters)[1] < 1e-6


# --- what the relay keeps -----------------------------------------------------------------------


def test_kept_values_are_named_by_what_they_look_like():
    start = 1_765_000_000.0
    assert kept._looks_like([str(int(start * 1000) + i) for i in range(5)], start) == "times"
    assert kept._looks_like(["127.0.0.1:5000", "10.0.0.2"], start) == "network addresses"
    assert kept._looks_like([str(i) for i in range(1, 9)], start) == "a sequence"
    assert kept._looks_like(["abc", "def"], start) == "values"


def test_the_relays_declared_tables_include_the_spent_set():
    declared = kept.declared_tables()
    assert declared["relay_token_spent"] == set(kept.REPORT_STORAGE["relay_token_spent"])


# --- statistics, plants, the selftest's verdict -------------------------------------------------


def test_binomial_tails():
    assert binomial_tail(10, 0.5, 10) == pytest.approx(1 / 1024)
    assert binomial_tail(10, 0.5, 0) == 1.0
    assert binomial_two_sided(100, 0.75, 75) == pytest.approx(1.0)
    assert binomial_two_sided(40, 0.5, 40) < 1e-9  # an outcome sent without noise


def test_a_plant_is_undone_and_only_its_party_applies():
    import client.signals

    original = client.signals.randomize
    with planted("read_without_noise", "relay"):
        assert client.signals.randomize is original  # a device plant: not the relay's
    with planted("read_without_noise", "device"):
        assert client.signals.randomize is not original
        assert client.signals.randomize("read", rng=random.Random(1)) == "read"
        assert {client.signals.randomize("clicked", rng=random.Random(i)) for i in range(50)} == {
            "not_read",
            "read",
            "clicked",
            "dismissed",
        }
    assert client.signals.randomize is original
    import server.noise

    real = server.noise.noisy_counts
    patcher = Patcher()
    PLANTS["figures_without_noise"].apply(patcher)
    assert server.noise.noisy_counts([5, 7], 2, 0.1) == [5, 7]  # exact: the leak
    patcher.undo()
    assert server.noise.noisy_counts is real


def test_the_selftest_passes_only_if_every_leak_is_caught():
    leak = PLANTS["read_without_noise"]
    clean = Run(None, True, [], [], "", 1.0)
    caught = Run(leak, False, ["randomized_response"], ["randomized_response"], "100%", 1.0)
    missed = Run(leak, True, [], [], "", 1.0)
    assert SelftestResult(40, 1, clean, [caught]).passed
    assert not SelftestResult(40, 1, clean, [caught, missed]).passed
    failing_clean = Run(None, False, ["timing_linkage"], [], "", 1.0)
    assert not SelftestResult(40, 1, failing_clean, [caught]).passed
    text = render_selftest(SelftestResult(40, 1, clean, [caught, missed]))
    assert "Sealpost audit selftest: FAIL" in text
    assert "NOT CAUGHT" in text and "randomized_response" in text
    assert len(PLANTS) >= 12
