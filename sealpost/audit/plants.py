"""Leaks planted on purpose: what ``sealpost audit --selftest`` (and ``--plant NAME``) runs
the audit against, to show that each one is caught.

Each plant is a named patch of the real device, relay or shuffler code, applied for one run
and only inside the audit's own processes: a device plant in the processes that play the
persons (and undone with them), a relay plant in the audited relay's process before its app
is built, a shuffler plant around the audited shuffler's life in this process. Nothing in
``client/``, ``server/`` or ``shuffler/`` knows about them. They hook stable seams, so that
they keep meaning the same leak while the code around them changes: the device's report
submission (``SignalAgent._send_to_shuffler``), its randomness and token inputs (the names
``client.signals`` imports: ``randomize``, ``new_token_input``), its settings, the relay's
report redemption (``server.signals.redeem``), its billing at release (``settle_release``) and
noise (``server.noise.noisy_counts``), and the shuffler's store and forwarding.

The leaks are those a researcher planted and an earlier audit missed (identity-derived values
in fields, derived or reused token inputs, report delays of minutes, reports on the account's
own connection, one person's reports together, an outcome without noise, reports that go
missing once a budget is spent, a relay that keeps each report's arrival time), and the
business's classic oracles.
"""

import contextvars
import hashlib
import json
import re
import secrets
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

Party = Literal["device", "relay", "shuffler"]


class Patcher:
    """Sets attributes, and puts every one back on :meth:`undo` (last set, first undone)."""

    def __init__(self) -> None:
        self._undo: list[tuple[object, str, Any]] = []

    def set(self, target: object, name: str, value: Any) -> None:
        self._undo.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._undo:
            target, name, value = self._undo.pop()
            setattr(target, name, value)


@dataclass(frozen=True)
class Plant:
    name: str
    party: Party
    leak: str  # what goes wrong, in a line (the selftest's table)
    catchers: tuple[str, ...]  # the checks meant to catch it
    apply: Callable[[Patcher], None]


# --- device plants -------------------------------------------------------------------------------

# The signal agent at work in this task: the functions client.signals imports by name (token
# inputs, randomized response, its HTTP client) take no agent, and some plants need to know
# whose device they run on.
_AGENT: contextvars.ContextVar[Any] = contextvars.ContextVar("planted_agent", default=None)
_CAMPAIGNS: contextvars.ContextVar[list[str]] = contextvars.ContextVar("planted_campaigns")


def _track_agent(p: Patcher) -> None:
    """Wrap the agent's entry points so that the patched functions below know the agent (and,
    while tokens are made, the campaigns they are for, in order)."""
    from client.signals import SignalAgent

    flush, delivered = SignalAgent.flush, SignalAgent.on_delivered_many

    async def tracked_flush(self: Any, now: float | None = None) -> Any:
        token = _AGENT.set(self)
        try:
            return await flush(self, now)
        finally:
            _AGENT.reset(token)

    async def tracked_delivered(self: Any, copies: list[tuple[str, str, str]]) -> None:
        agent, campaigns = _AGENT.set(self), _CAMPAIGNS.set([c for _, c, _ in copies])
        try:
            await delivered(self, copies)
        finally:
            _AGENT.reset(agent)
            _CAMPAIGNS.reset(campaigns)

    p.set(SignalAgent, "flush", tracked_flush)
    p.set(SignalAgent, "on_delivered_many", tracked_delivered)


def _handle() -> str:
    agent = _AGENT.get()
    return str(agent.api.handle) if agent is not None else "?"


def handle_hash_in_user_agent(p: Patcher) -> None:
    """Every anonymous request says which device sent it: a hash of the handle, as hex, in the
    User-Agent (an allowed header, so no header check alone can object)."""
    import httpx

    import client.signals

    _track_agent(p)

    class TaggingClient(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            digest = hashlib.sha256(_handle().encode()).hexdigest()[:16]
            kwargs["headers"] = {"User-Agent": f"python-httpx/{httpx.__version__} ({digest})"}
            super().__init__(*args, **kwargs)

    # client.signals' own name for httpx: the real module, but for its AsyncClient.
    tagging = types.SimpleNamespace(**{**vars(httpx), "AsyncClient": TaggingClient})
    p.set(client.signals, "httpx", tagging)


_PHONE = re.compile(r"\+39 ?(3\d\d) ?(\d{7})")


def phone_digits_in_token_input(p: Patcher) -> None:
    """Token inputs start with the digits of the person's phone number, as her businesses'
    messages on the device show it (the rest random): 32 bytes that still verify."""
    from sqlmodel import Session, select

    import client.signals
    from client.store import StoredMessage

    _track_agent(p)

    def new_token_input() -> bytes:
        agent = _AGENT.get()
        digits = b""
        if agent is not None:
            with Session(agent.engine) as s:
                texts = s.exec(select(StoredMessage.text)).all()
            found = next((m for t in texts if t and (m := _PHONE.search(t))), None)
            digits = "".join(found.groups()).encode() if found else b""
        return digits + secrets.token_bytes(32 - len(digits))

    p.set(client.signals, "new_token_input", new_token_input)


def token_input_from_identity(p: Patcher) -> None:
    """Token inputs are SHA-256 of handle:campaign: deterministic, so a retry gets the same
    token... and the relay, which knows both, gets the sender."""
    import client.signals

    _track_agent(p)

    def new_token_input() -> bytes:
        pending = _CAMPAIGNS.get([])
        campaign = pending.pop(0) if pending else "?"
        return hashlib.sha256(f"{_handle()}:{campaign}".encode()).digest()

    p.set(client.signals, "new_token_input", new_token_input)


def token_input_reused(p: Patcher) -> None:
    """A device draws one token input and uses it for every campaign (keys differ per
    campaign, so each token still verifies): the relay sees one person's reports linked."""
    import client.signals

    _track_agent(p)
    mine: dict[str, bytes] = {}

    def new_token_input() -> bytes:
        return mine.setdefault(_handle(), secrets.token_bytes(32))

    p.set(client.signals, "new_token_input", new_token_input)


def outcome_from_handle(p: Patcher) -> None:
    """The report's outcome is the one the first byte of SHA-256 of the handle picks (modulo
    the four outcomes): a field too short to search, carrying an identity anyway."""
    import client.signals
    from shared.signals import OUTCOMES

    _track_agent(p)

    def randomize(outcome: str, epsilon: float = 0.0, rng: Any = None) -> str:
        return OUTCOMES[hashlib.sha256(_handle().encode()).digest()[0] % len(OUTCOMES)]

    p.set(client.signals, "randomize", randomize)


def read_without_noise(p: Patcher) -> None:
    """The ``read`` outcome skips randomized response: a person who read the message (and
    did nothing more) is always reported as having read it; other outcomes are randomized."""
    import client.signals

    original = client.signals.randomize

    def randomize(outcome: str, *args: Any, **kwargs: Any) -> str:
        return outcome if outcome == "read" else original(outcome, *args, **kwargs)

    p.set(client.signals, "randomize", randomize)


def missing_when_budget_spent(p: Patcher) -> None:
    """A device whose privacy budget is spent drops its report (says it sent it) instead of
    sending one that says no_signal: with nothing to tell, it tells nothing."""
    from client.signals import SignalAgent
    from shared.api import SignalResult
    from shared.signals import NO_SIGNAL, decode_report

    original = SignalAgent._send_to_shuffler

    async def send(self: Any, report: str) -> Any:
        if decode_report(report.encode()).outcome == NO_SIGNAL:
            return SignalResult(counted=1, refused={})
        return await original(self, report)

    p.set(SignalAgent, "_send_to_shuffler", send)


def report_delay_minutes(p: Patcher) -> None:
    """A report leaves within five minutes of delivery, not at a moment over the next day."""
    from client.signals import SignalAgent

    original = SignalAgent._load_settings

    def load(self: Any) -> Any:
        settings = original(self)
        settings.max_delay_s = 300.0
        return settings

    p.set(SignalAgent, "_load_settings", load)


def reports_sent_together(p: Patcher) -> None:
    """When one report is due, the device sends all of its pending reports at that moment,
    back to back: they reach the relay in one batch request."""
    from sqlmodel import Session, select

    from client.signals import PendingSignal, SignalAgent

    original = SignalAgent.flush

    async def flush(self: Any, now: float | None = None) -> Any:
        result = await original(self, now)
        while result is not None and self.pending():
            moment = self.clock() if now is None else now
            with Session(self.engine) as s:
                for row in s.exec(select(PendingSignal).where(PendingSignal.sent == False)):  # noqa: E712
                    row.send_after = min(row.send_after, int(moment))
                    s.add(row)
                s.commit()
            self._pacing_path.write_text(json.dumps({"next_report_at": 0}))
            if await original(self, now) is None:
                break
        return result

    p.set(SignalAgent, "flush", flush)


def report_on_account_connection(p: Patcher) -> None:
    """Each report also goes to the relay on the account's own HTTP client (its kept-alive
    connection), before going to the shuffler as it should."""
    from client.signals import SignalAgent
    from shared.api import SignalBatch

    original = SignalAgent._send_to_shuffler

    async def send(self: Any, report: str) -> Any:
        body = SignalBatch(reports=[report]).model_dump_json().encode()
        headers = {"Content-Type": "application/json"}
        await self.api._http.post("/v1/signals", content=body, headers=headers)
        return await original(self, report)

    p.set(SignalAgent, "_send_to_shuffler", send)


# --- relay plants --------------------------------------------------------------------------------


def relay_keeps_arrival_time(p: Patcher) -> None:
    """The relay writes down when each report arrived, in a table of its own."""
    from sqlalchemy import text

    import server.signals
    from shared.signals import InvalidReport, decode_report

    original = server.signals.redeem

    def redeem(session: Any, raw_reports: list[str]) -> list[str | None]:
        outcomes = original(session, raw_reports)
        session.execute(
            text(
                "CREATE TABLE IF NOT EXISTS relay_report_arrival "
                "(campaign_id TEXT, token_input TEXT, arrived_at INTEGER)"
            )
        )
        now = int(time.time() * 1000)
        for raw, outcome in zip(raw_reports, outcomes, strict=True):
            try:
                report = decode_report(raw.encode())
            except InvalidReport:
                continue
            if outcome is None:
                session.execute(
                    text("INSERT INTO relay_report_arrival VALUES (:c, :t, :a)"),
                    {"c": report.campaign_id, "t": report.token_input, "a": now},
                )
        session.commit()
        return outcomes

    p.set(server.signals, "redeem", redeem)


def refund_per_refused_copy(p: Patcher) -> None:
    """The relay refunds each copy refused by a person's choice, as it happens (ledger note
    ``refused``) instead of charging every released copy alike."""
    import server.billing
    import server.dispatcher
    import server.mailbox

    billing = server.billing

    def settle_release(session: Any, copies: Any, now_ms: int) -> None:
        charged, unsent, refused = [], [], []
        for paid, outcome in copies:
            if outcome == "expired":
                unsent.append(paid)
            elif outcome:
                refused.append(paid)
            else:
                charged.append(paid)
        if charged:
            billing.charge(session, billing.movements_of(charged), now_ms)
        if unsent:
            billing.refund(session, billing.movements_of(unsent), now_ms, "expired")
        if refused:
            billing.refund(session, billing.movements_of(refused), now_ms, "refused")

    for module in (server.mailbox, server.dispatcher):
        p.set(module, "settle_release", settle_release)


def figures_without_noise(p: Patcher) -> None:
    """The relay publishes the exact counts (with the margins it would have had)."""
    import server.noise

    def noisy_counts(values: list[int], sensitivity: int, epsilon: float) -> list[int]:
        return [int(v) for v in values]

    p.set(server.noise, "noisy_counts", noisy_counts)


# --- shuffler plants -----------------------------------------------------------------------------


def shuffler_keeps_arrival_order(p: Patcher) -> None:
    """The shuffler's order keys count up and it forwards without shuffling: a batch holds
    its reports in the order they arrived."""
    import shuffler.forward
    import shuffler.store

    counter = iter(range(1, 1 << 62))

    def token_bytes(n: int) -> bytes:
        return next(counter).to_bytes(n, "big")

    class InOrder:
        def shuffle(self, items: list[Any]) -> None:
            return None

    p.set(shuffler.store, "secrets", types.SimpleNamespace(token_bytes=token_bytes))
    p.set(shuffler.forward, "random", types.SimpleNamespace(SystemRandom=InOrder))


def shuffler_forwards_small_batches(p: Patcher) -> None:
    """The shuffler forwards what it holds in batches of two, not of at least B."""
    import shuffler.forward

    def batch_sizes(held: int, minimum: int, maximum: int = 1000) -> list[int]:
        return [2] * (held // 2) + ([held % 2] if held % 2 else [])

    p.set(shuffler.forward, "batch_sizes", batch_sizes)


PLANTS: dict[str, Plant] = {
    plant.name: plant
    for plant in (
        Plant(
            "handle_hash_in_user_agent",
            "device",
            "a SHA-256 of the handle, hex, in the User-Agent of every anonymous request",
            ("identity_values",),
            handle_hash_in_user_agent,
        ),
        Plant(
            "phone_digits_in_token_input",
            "device",
            "the person's phone digits as the first bytes of each token input",
            ("identity_values",),
            phone_digits_in_token_input,
        ),
        Plant(
            "outcome_from_handle",
            "device",
            "the report's outcome is picked by the first byte of SHA-256 of the handle",
            ("identity_values", "randomized_response"),
            outcome_from_handle,
        ),
        Plant(
            "token_input_from_identity",
            "device",
            "token input = SHA-256(handle:campaign)",
            ("token_linkage",),
            token_input_from_identity,
        ),
        Plant(
            "token_input_reused",
            "device",
            "one token input per device, reused for every campaign",
            ("token_linkage",),
            token_input_reused,
        ),
        Plant(
            "report_delay_minutes",
            "device",
            "a report leaves within 5 minutes of delivery instead of within a day",
            ("timing_linkage",),
            report_delay_minutes,
        ),
        Plant(
            "reports_sent_together",
            "device",
            "all of a device's reports leave at once, so they reach the relay in one request",
            ("timing_linkage",),
            reports_sent_together,
        ),
        Plant(
            "report_on_account_connection",
            "device",
            "each report also goes to the relay on the account's own HTTP connection",
            ("connection_linkage", "signal_requests"),
            report_on_account_connection,
        ),
        Plant(
            "read_without_noise",
            "device",
            "the read outcome is reported as it is, without randomized response",
            ("randomized_response",),
            read_without_noise,
        ),
        Plant(
            "missing_when_budget_spent",
            "device",
            "a device whose privacy budget is spent drops its report instead of sending no_signal",
            ("report_existence", "reports_counted_once"),
            missing_when_budget_spent,
        ),
        Plant(
            "relay_keeps_arrival_time",
            "relay",
            "the relay stores each report's arrival time in a table of its own",
            ("relay_keeps",),
            relay_keeps_arrival_time,
        ),
        Plant(
            "refund_per_refused_copy",
            "relay",
            "the relay refunds each copy a person's choice refused, line by line",
            ("business_oracle", "business_view_noisy"),
            refund_per_refused_copy,
        ),
        Plant(
            "figures_without_noise",
            "relay",
            "the relay publishes exact counts as a campaign's figures",
            ("business_oracle", "business_view_noisy"),
            figures_without_noise,
        ),
        Plant(
            "shuffler_keeps_arrival_order",
            "shuffler",
            "the shuffler forwards reports in the order they arrived",
            ("timing_linkage", "relay_keeps"),
            shuffler_keeps_arrival_order,
        ),
        Plant(
            "shuffler_forwards_small_batches",
            "shuffler",
            "the shuffler forwards in batches of two instead of at least B",
            ("timing_linkage",),
            shuffler_forwards_small_batches,
        ),
    )
}


def plant(name: str | None) -> Plant | None:
    """The plant called ``name`` (None for none); a KeyError names the known ones."""
    if name is None:
        return None
    if name not in PLANTS:
        raise KeyError(f"no plant {name!r}; known: {', '.join(PLANTS)}")
    return PLANTS[name]


@contextmanager
def planted(name: str | None, party: Party) -> Iterator[Plant | None]:
    """Within the block, the plant ``name`` is in place if it belongs to ``party``."""
    found = plant(name)
    patcher = Patcher()
    if found is not None and found.party == party:
        found.apply(patcher)
    try:
        yield found
    finally:
        patcher.undo()
