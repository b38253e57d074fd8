"""The person's side of interaction signals: one anonymous, noisy report per campaign, sent
at a moment of its own, through the shuffler.

When a campaign copy is stored and acked, the client obtains a blind token for it on the
authenticated channel and schedules the campaign's report for a random moment later in the
day (so a report's timing cannot be matched with the delivery, the published attack on
automatic receipts). Interactions (read, clicked, dismissed) are noted on that pending report.
When it is due, the one outcome they amount to goes through k-ary randomized response,
charged to the person's epsilon ledger (ln 3 a report, under daily, 30-day and per-business
lifetime caps; shared/signals.py). With signals switched off, or no budget left, the report
says ``no_signal`` and costs nothing, so it still exists and tells nothing about the person.
It is sent on the anonymous channel: a separate HTTP client with no credentials, no handle
and no message id.

Timing, so that a report cannot be tied to the account's own traffic: each report leaves
alone, in a request of its own, never sooner than ``quiet_after_signed_s`` (60 s) after this
device's last signed request and never sooner than a random gap (``min_gap_s`` plus an
exponential wait) after its previous report. It goes to the shuffler (``SEALPOST_SHUFFLER_URL``
or the profile's ``shuffler_url``), which hides from the relay when and from where it came.
With no shuffler set it goes straight to the relay as before, and the privacy ledger says on
that entry what the relay can then see.

Keys: just before a report leaves, the device fetches the relay's token key log the same way
(client/key_log.py) and sends the report only if the key its token was proven against is the
one the log lists for the campaign, in a log that extends the one it saw before. Otherwise the
report is withheld for good (never sent, never retried) and the problem is recorded where the
app and ``sealpost inbox`` show it (:meth:`SignalAgent.problems`): a key of this device's own
would let the relay recognise its report among everyone's.
"""

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import httpx
from sqlalchemy import func, text
from sqlmodel import Field, Session, SQLModel, select

from client import tls
from client.key_log import KeyLogReader, KeyLogUnavailable
from client.ledger import PrivacyLedger
from client.profile import ProfileInfo
from client.relay_api import RelayAPI, RelayError
from client.settings import ClientSettings
from client.store import add_missing_columns, create_tables
from shared.api import (
    SignalBatch,
    SignalResult,
    TokenBatchRequest,
    TokenBatchResponse,
    TokenRequest,
    TokenResponse,
)
from shared.encoding import b64decode, b64encode
from shared.shuffled import REPORTS_PATH, ShufflerReport
from shared.signals import (
    DEFAULT_REPORT_EPSILON,
    NO_SIGNAL,
    REPORT_VALUES,
    BudgetExhausted,
    EpsilonLedger,
    Event,
    ReportValue,
    encode_report,
    event_bit,
    events_of,
    outcome_of,
    randomize,
)
from shared.token_log import KeyLogInvalid
from shared.tokens import Token, blind, finalize, new_token_input

DAY_S = 86_400
DIRECT_WARNING = (
    "no shuffler set (SEALPOST_SHUFFLER_URL): this report went straight to the relay, which "
    "sees when it arrived and from which address"
)


class PendingSignal(SQLModel, table=True):
    """One campaign's report, waiting for its moment. The true bits never leave the device."""

    __tablename__ = "client_signal"

    campaign_id: str = Field(primary_key=True)
    day: str
    token_input: str
    token_output: str
    true_bits: int  # what the person did: a mask over shared.signals.EVENTS
    send_after: int  # unix seconds
    sent: bool = False
    # The key the token's issuance was proven against (base64), checked against the relay's
    # token key log before the report leaves; and when the token was obtained (unix seconds).
    public_key: str | None = None
    issued_at: int | None = None
    # Why the report will never leave (a key that failed its check), or None.
    withheld: str | None = None
    # The business that sent the campaign: its reports share one lifetime budget.
    business: str | None = None
    # 2: true_bits is a mask over today's EVENTS. Rows of the first version (NULL here) had
    # a "delivered" bit first, and are shifted once when the store is opened.
    mask_v: int | None = 2


_not_withheld = PendingSignal.withheld == None  # noqa: E711 - SQL IS NULL
# When the first unsent report (not withheld) is due, or None.
_FIRST_UNSENT = select(func.min(PendingSignal.send_after)).where(
    PendingSignal.sent == False,  # noqa: E712
    _not_withheld,
)

# Columns newer than the table (stores of older versions gain them on open).
_ADDED_COLUMNS = {
    "client_signal": {
        "public_key": "VARCHAR",
        "issued_at": "INTEGER",
        "withheld": "VARCHAR",
        "business": "VARCHAR",
        "mask_v": "INTEGER",
    }
}


class SignalProblem(SQLModel, table=True):
    """A report withheld because its token's key failed a check: what the app shows."""

    __tablename__ = "client_signal_problem"

    id: int | None = Field(default=None, primary_key=True)
    at: int  # unix seconds
    campaign_id: str
    reason: str  # key_mismatch, fork, not_in_log, ... (see KeyCheckFailed)
    detail: str  # in words, for the person
    evidence: str | None = None  # JSON: the signed heads or keys that disagree


class KeyCheckFailed(Exception):
    """A report was withheld: its token's key failed the check against the relay's token key
    log. ``problem`` is what was recorded (also in :meth:`SignalAgent.problems`)."""

    def __init__(self, problem: SignalProblem) -> None:
        super().__init__(f"interaction report for campaign {problem.campaign_id}: {problem.detail}")
        self.problem = problem


def _describe(reason: str, campaign_id: str, found: str = "") -> str:
    """What a failed check means, in words; every one ends with the report kept back."""
    kept = "The report was not sent, and will not be."
    what = {
        "key_mismatch": (
            f"the relay gave this device a token key for campaign {campaign_id} that is not "
            "the key its published key log lists for that campaign. A key of this device's "
            "own would let the relay recognise its report among everyone's."
        ),
        "fork": (
            "the relay's token key log does not extend the one this device saw before: the "
            "relay rewrote its history, and may be showing this device a log of its own. Both "
            "signed heads are kept as evidence."
        ),
        "not_in_log": (
            f"the relay's token key log does not list campaign {campaign_id}, whose token this "
            "device was given an hour or more ago: its key cannot be checked."
        ),
        "key_not_recorded": (
            f"the token for campaign {campaign_id} was obtained by an older version that did "
            "not keep its key, so the key cannot be checked."
        ),
    }.get(reason, f"the relay's token key log failed its check: {found}.")
    return f"{what[0].upper()}{what[1:]} {kept}"


@dataclass
class SignalSettings:
    enabled: bool = True  # optional signals; explicit choices go through prefs regardless
    max_delay_s: float = DAY_S  # reports leave at a random time within this after delivery
    # A report never leaves within this long of the device's own last signed request...
    quiet_after_signed_s: float = 60.0
    # ...nor within min_gap_s + Exp(mean_extra_gap_s) of its previous report.
    min_gap_s: float = 30.0
    mean_extra_gap_s: float = 270.0
    # A campaign the key log does not list yet: the report waits this long after its token
    # was obtained (a shuffler's copy of the log, or the relay, briefly behind) before it is
    # withheld. An honest relay logs a key before any copy of its campaign is sent.
    key_log_grace_s: float = 3600.0


class SignalAgent:
    def __init__(
        self,
        api: RelayAPI,
        engine: object,
        profile_dir: Path,
        ledger: PrivacyLedger,
        shuffler_url: str | None = None,
        key_log_fingerprint: str | None = None,
    ) -> None:
        self.api = api
        self.engine = engine
        self.dir = profile_dir
        self.ledger = ledger
        tables = [PendingSignal.__table__, SignalProblem.__table__]  # type: ignore[attr-defined]
        create_tables(engine, tables)  # type: ignore[arg-type]
        add_missing_columns(engine, _ADDED_COLUMNS)  # type: ignore[arg-type]
        _upgrade_masks(engine)
        # Pinned with SEALPOST_TOKEN_LOG_KEY_FINGERPRINT; else the first log key seen is kept.
        self.key_log = KeyLogReader(profile_dir, ledger, key_log_fingerprint)
        self.settings = self._load_settings()
        self._rng = secrets.SystemRandom()
        self._clock: Callable[[], float] = time.time
        # Where reports go: None sends them straight to the relay (see DIRECT_WARNING).
        url = shuffler_url or _configured_shuffler(profile_dir)
        self.shuffler_url: str | None = url.rstrip("/") if url else None

    @property
    def clock(self) -> Callable[[], float]:
        """Unix seconds now. A simulation sets its virtual clock here, so that report days,
        delays, the epsilon budget and the quiet time after signed requests follow simulated
        time rather than the wall clock."""
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.api.clock = clock

    # --- settings and budget ----------------------------------------------------------------

    @property
    def _settings_path(self) -> Path:
        return self.dir / "signals.json"

    def _load_settings(self) -> SignalSettings:
        try:
            saved = json.loads(self._settings_path.read_text())
        except FileNotFoundError:
            return SignalSettings()
        # Only what this version knows (the first one saved a per-bit epsilon: ε is now the
        # protocol's, ln 3 a report, so that the relay's estimates hold for everyone's).
        known = SignalSettings.__dataclass_fields__
        return SignalSettings(**{k: v for k, v in saved.items() if k in known})

    def save_settings(self) -> None:
        self._settings_path.write_text(json.dumps(self.settings.__dict__, indent=2))

    def _budget(self) -> EpsilonLedger:
        path = self.dir / "epsilon.json"
        return (
            EpsilonLedger.from_json(json.loads(path.read_text()))
            if path.exists()
            else EpsilonLedger()
        )

    def _save_budget(self, budget: EpsilonLedger) -> None:
        (self.dir / "epsilon.json").write_text(json.dumps(budget.to_json(), indent=2))

    # --- lifecycle of a report --------------------------------------------------------------

    async def on_delivered(self, msg_id: str, campaign_id: str, business: str) -> None:
        """A campaign copy was stored and acked: get its token and schedule its report."""
        await self.on_delivered_many([(msg_id, campaign_id, business)])

    async def on_delivered_many(self, copies: list[tuple[str, str, str]]) -> None:
        """Campaign copies (``(msg_id, campaign_id, business)``, one per campaign) were
        stored and acked: get their tokens in one request, and schedule their reports."""
        # One report per campaign, whatever happens.
        have = self._have_reports([c for _, c, _ in copies])
        copies = [(m, c, b) for m, c, b in copies if c not in have]
        if not copies:
            return
        inputs = [new_token_input() for _ in copies]
        blinds = [blind(token_input) for token_input in inputs]
        asked = [
            TokenRequest(msg_id=msg_id, blinded_element=b64encode(blinded))
            for (msg_id, _, _), (_, blinded) in zip(copies, blinds, strict=True)
        ]
        if len(asked) == 1:
            answers = [
                TokenResponse.model_validate(
                    await self.api.request("POST", "/v1/signals/tokens", asked[0])
                )
            ]
        else:
            answers = TokenBatchResponse.model_validate(
                await self.api.request(
                    "POST", "/v1/signals/tokens/batch", TokenBatchRequest(tokens=asked)
                )
            ).tokens
        if len(answers) != len(copies):
            raise RelayError(502, "bad_token_answer", "The relay answered for other tokens.")
        now = self.clock()
        rows = []
        for (_, campaign_id, business), token_input, (blind_scalar, blinded), answer in zip(
            copies, inputs, blinds, answers, strict=True
        ):
            # The proof shows only that the relay used the key it names here; whether that
            # key is everybody's is checked against the key log before the report leaves.
            output = finalize(
                token_input,
                blind_scalar,
                blinded,
                b64decode(answer.evaluated_element),
                b64decode(answer.proof),
                b64decode(answer.public_key),
            )
            rows.append(
                PendingSignal(
                    campaign_id=campaign_id,
                    day=datetime.fromtimestamp(now, UTC).date().isoformat(),
                    token_input=b64encode(token_input),
                    token_output=b64encode(output),
                    true_bits=0,
                    send_after=int(now + self._rng.uniform(0, self.settings.max_delay_s)),
                    public_key=answer.public_key,
                    issued_at=int(now),
                    business=business,
                )
            )
        # As a merge would (a row that appeared meanwhile is replaced whole), in one statement.
        table = PendingSignal.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(
                table.insert().prefix_with("OR REPLACE"),
                [{c.name: getattr(row, c.name) for c in table.columns} for row in rows],
            )

    def _have_reports(self, campaign_ids: list[str]) -> set[str]:
        """Those of ``campaign_ids`` this device holds a report for already."""
        if not campaign_ids:
            return set()
        table = PendingSignal.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:  # type: ignore[attr-defined]
            found = conn.execute(
                select(table.c.campaign_id).where(table.c.campaign_id.in_(campaign_ids))
            )
            return {campaign_id for (campaign_id,) in found}

    def record(self, campaign_id: str, event: Event) -> None:
        """Note an interaction on the campaign's pending report (it stays on this device)."""
        table = PendingSignal.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(
                table.update()
                .where(table.c.campaign_id == campaign_id, table.c.sent == False)  # noqa: E712
                .values(true_bits=table.c.true_bits.op("|")(event_bit(event)))
            )

    def _noisy(self, row: PendingSignal) -> ReportValue:
        """The value the report carries: the outcome after randomized response, charged to
        the budget; or no_signal (free) with signals off or the budget spent."""
        if not self.settings.enabled:
            return NO_SIGNAL
        budget = self._budget()
        try:
            budget.spend(row.day, DEFAULT_REPORT_EPSILON, business=self._business_of(row))
        except BudgetExhausted:
            return NO_SIGNAL
        self._save_budget(budget)
        return randomize(outcome_of(events_of(row.true_bits)), rng=self._rng)

    def _business_of(self, row: PendingSignal) -> str | None:
        """The business whose campaign ``row`` reports on: recorded with the token, or (a
        report pending from before that was recorded) the sender of the stored copy."""
        if row.business is not None:
            return row.business
        with Session(self.engine) as s:  # type: ignore[arg-type]
            return s.execute(
                text("SELECT peer FROM client_message WHERE campaign_id = :c LIMIT 1"),
                {"c": row.campaign_id},
            ).scalar()

    def business_budget(self, business: str) -> "BusinessBudget":
        """What reports about ``business``'s campaigns have cost this device, for good."""
        budget = self._budget()
        return BusinessBudget(
            business=business,
            spent=budget.spent_on_business(business),
            cap=budget.business_cap,
        )

    def budget_summary(self) -> dict[str, object]:
        """What reports have cost this device: today, over the last 30 days, ever, and per
        business, each next to its cap (the figures ``sealpost prefs show`` prints)."""
        budget = self._budget()
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        return {
            "signals": "on" if self.settings.enabled else "off",
            "epsilon_per_report": DEFAULT_REPORT_EPSILON,
            "today": {"spent": budget.spent_on(today), "cap": budget.daily_cap},
            "last_30_days": {"spent": budget.spent_in_window(today), "cap": budget.window_cap},
            "lifetime": {"spent": budget.lifetime_spent, "cap": budget.lifetime_cap},
            "by_business": {
                b.business: {"spent": b.spent, "cap": b.cap} for b in self.business_budgets()
            },
        }

    def business_budgets(self) -> list["BusinessBudget"]:
        """Every business this device has reported on, most spent first."""
        budget = self._budget()
        return sorted(
            (
                BusinessBudget(b, spent, budget.business_cap)
                for b, spent in budget.by_business.items()
            ),
            key=lambda b: (-b.spent, b.business),
        )

    @property
    def _drawn_path(self) -> Path:
        return self.dir / "signal_drawn.json"

    def _drawn(self) -> dict[str, ReportValue]:
        try:
            saved = json.loads(self._drawn_path.read_text())
            # (A first version's draw, a bitmask, is not a value any more: drawn again.)
            return {str(k): v for k, v in saved.items() if v in REPORT_VALUES}
        except (FileNotFoundError, ValueError, AttributeError):
            return {}

    def _drawn_value(self, row: PendingSignal) -> ReportValue:
        """The report's value, drawn (and charged) once: a report that failed to leave is
        sent again with the same value. Drawing afresh would spend ε on every retry, and
        two draws of one truth reaching anyone would tell it more than one."""
        drawn = self._drawn()
        if row.campaign_id not in drawn:
            drawn[row.campaign_id] = self._noisy(row)
            self._drawn_path.write_text(json.dumps(drawn))
        return drawn[row.campaign_id]

    def _forget_drawn(self, campaign_id: str) -> None:
        drawn = self._drawn()
        if drawn.pop(campaign_id, None) is not None:
            self._drawn_path.write_text(json.dumps(drawn))

    # --- when a report may leave ----------------------------------------------------------

    @property
    def _pacing_path(self) -> Path:
        return self.dir / "signal_pacing.json"

    def _next_report_at(self) -> float:
        """The earliest moment the gap after this device's previous report allows."""
        try:
            return float(json.loads(self._pacing_path.read_text())["next_report_at"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return 0.0

    def _last_signed_at(self) -> float | None:
        # This process's own requests first; else what an earlier process (a previous
        # `sealpost inbox`) wrote in the privacy ledger.
        if self.api.last_signed_at is not None:
            return self.api.last_signed_at
        return self.ledger.last_signed_at()

    def quiet_until(self) -> float:
        """No report leaves before this moment: ``quiet_after_signed_s`` after the device's
        last signed request, and a random gap after its previous report."""
        signed = self._last_signed_at()
        after_signed = -1.0 if signed is None else signed + self.settings.quiet_after_signed_s
        return max(after_signed, self._next_report_at())

    def next_send_at(self) -> float | None:
        """When the next report may leave (its own moment, pushed past the quiet time), or
        None with nothing left to send."""
        # Asked before every report and after it (a simulation asks thousands of devices
        # each simulated hour): a plain query, without the ORM's per-call machinery.
        with self.engine.connect() as conn:  # type: ignore[attr-defined]
            first = conn.execute(_FIRST_UNSENT).scalar()
        if first is None:
            return None
        return max(float(first), self.quiet_until())

    def pending(self) -> int:
        """Reports not sent yet (and not withheld)."""
        unsent = PendingSignal.sent == False  # noqa: E712
        with Session(self.engine) as s:  # type: ignore[arg-type]
            return s.exec(
                select(func.count()).select_from(PendingSignal).where(unsent, _not_withheld)
            ).one()

    async def flush(self, now: float | None = None) -> SignalResult | None:
        """Send one report whose moment has come, if the quiet time allows; None if none.

        One report per call and per request, never right after the device's own signed
        traffic, and never back to back: the caller calls again later (the app every
        minute). Reports sent together would tell the relay they come from one person.
        Through a shuffler, ``counted`` says the shuffler took the report (the relay counts
        it when the shuffler's batch arrives)."""
        now = self.clock() if now is None else now
        if now < self.quiet_until():
            return None
        with Session(self.engine) as s:  # type: ignore[arg-type]
            due = list(
                s.exec(
                    select(PendingSignal).where(
                        PendingSignal.sent == False,  # noqa: E712
                        PendingSignal.send_after <= now,
                        _not_withheld,
                    )
                )
            )
        if not due:
            return None
        # The device's own random source: unpredictable to the relay (a seeded one in
        # simulations, so that a run can be repeated). Which due report goes first says
        # nothing either.
        row = due[int(self._rng.random() * len(due))]
        # Before anything is drawn or charged: a report whose key fails is never sent.
        await self._check_key(row, now)
        noisy = self._drawn_value(row)
        token = Token(b64decode(row.token_input), b64decode(row.token_output))
        report = encode_report(row.campaign_id, row.day, noisy, token).decode()
        if self.shuffler_url:
            result = await self._send_to_shuffler(report)
        else:
            result = await self._send_anonymously(report)
        table = PendingSignal.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(
                table.update().where(table.c.campaign_id == row.campaign_id).values(sent=True)
            )
        row.sent = True
        self._forget_drawn(row.campaign_id)
        gap = self.settings.min_gap_s + self._rng.expovariate(
            1 / max(self.settings.mean_extra_gap_s, 1e-9)
        )
        self._pacing_path.write_text(json.dumps({"next_report_at": now + gap}))
        return result

    # --- the token's key ----------------------------------------------------------------------

    async def _check_key(self, row: PendingSignal, now: float) -> None:
        """Return if ``row``'s token key is the one the relay's key log lists for its
        campaign, in a log that extends the one this device saw last. Raises
        :class:`KeyCheckFailed` (the report is withheld for good) or ``KeyLogUnavailable``
        (it waits: the log could not be had, or not yet checked)."""
        if row.public_key is None:
            self._withhold(row, "key_not_recorded", now)
        # The same way the report goes: through the shuffler, or (none set) anonymously.
        log = await self.key_log.fetch(
            self.shuffler_url or self.api.base_url,
            via_shuffler=bool(self.shuffler_url),
            campaign_id=row.campaign_id,
        )
        seen = self.key_log.seen()
        try:
            view = self.key_log.check(log, seen)
        except KeyLogInvalid as exc:
            evidence = {
                "seen": seen.model_dump() if seen else None,
                "served": log.head.model_dump(),
            }
            self._withhold(row, exc.reason, now, found=exc.detail, evidence=evidence)
        listed = view.keys.get(row.campaign_id)
        if listed is None:
            issued = row.issued_at if row.issued_at is not None else now
            if now - issued < self.settings.key_log_grace_s:
                raise KeyLogUnavailable(
                    f"the token key log does not list campaign {row.campaign_id} yet; "
                    "the report waits"
                )
            self._withhold(row, "not_in_log", now, evidence={"head": view.head.model_dump()})
        if listed != row.public_key:
            evidence = {"given": row.public_key, "listed": listed, "head": view.head.model_dump()}
            self._withhold(row, "key_mismatch", now, evidence=evidence)

    def _withhold(
        self,
        row: PendingSignal,
        reason: str,
        now: float,
        *,
        found: str = "",
        evidence: dict[str, object] | None = None,
    ) -> NoReturn:
        """Keep ``row``'s report on this device for good and record why; raises
        :class:`KeyCheckFailed`."""
        problem = SignalProblem(
            at=int(now),
            campaign_id=row.campaign_id,
            reason=reason,
            detail=_describe(reason, row.campaign_id, found),
            evidence=json.dumps(evidence) if evidence is not None else None,
        )
        with Session(self.engine) as s:  # type: ignore[arg-type]
            stored = s.get(PendingSignal, row.campaign_id)
            if stored is not None:
                stored.withheld = reason
                s.add(stored)
            s.add(problem)
            s.commit()
            s.refresh(problem)
        raise KeyCheckFailed(problem)

    def problems(self) -> list[SignalProblem]:
        """Reports withheld because a key failed its check, oldest first."""
        with Session(self.engine) as s:  # type: ignore[arg-type]
            return list(s.exec(select(SignalProblem).order_by(SignalProblem.id)))  # type: ignore[arg-type]

    async def flush_due(self, until: float) -> SignalResult | None:
        """Send every report that can leave by ``until``, each at its own moment (a
        simulation's virtual time moves through them); None if none went."""
        counted = 0
        refused: dict[int, str] = {}
        sent = 0
        while (moment := self.next_send_at()) is not None and moment <= until:
            result = await self.flush(now=moment)
            if result is None:
                break
            counted += result.counted
            for why in result.refused.values():
                refused[sent] = why
            sent += 1
        return SignalResult(counted=counted, refused=refused) if sent else None

    async def _send_to_shuffler(self, report: str) -> SignalResult:
        body = ShufflerReport(report=report).model_dump_json().encode()
        url = f"{self.shuffler_url}{REPORTS_PATH}"
        headers = {"Content-Type": "application/json"}
        self.ledger.record(
            "POST", url, {"channel": "anonymous", "via": "shuffler", **headers}, body
        )
        # A fresh client: no connection, cookie, header or TLS context shared with the
        # account's channel.
        async with httpx.AsyncClient(timeout=15, verify=tls.anonymous_channel()) as anonymous:
            response = await anonymous.post(url, content=body, headers=headers)
        if response.status_code != 202:
            raise RelayError(response.status_code, "shuffler_refused", response.text[:200])
        return SignalResult(counted=1, refused={})

    async def _send_anonymously(self, report: str) -> SignalResult:
        body = SignalBatch(reports=[report]).model_dump_json().encode()
        url = self.api.base_url + "/v1/signals"
        headers = {"Content-Type": "application/json"}
        marks = {"channel": "anonymous", "via": "relay", "warning": DIRECT_WARNING}
        self.ledger.record("POST", url, {**marks, **headers}, body)
        # A fresh client: no connection, cookie, header or TLS context shared with the
        # account's channel.
        async with httpx.AsyncClient(timeout=15, verify=tls.anonymous_channel()) as anonymous:
            response = await anonymous.post(url, content=body, headers=headers)
        if response.status_code != 200:
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "signals_refused", response.text[:200]
            raise RelayError(response.status_code, code, message)
        return SignalResult.model_validate(response.json())


@dataclass(frozen=True)
class BusinessBudget:
    """What one business's reports have cost this device over its life, and the cap."""

    business: str
    spent: float
    cap: float | None


def _upgrade_masks(engine: object) -> None:
    """Shift first-version masks (delivered, read, clicked, dismissed, ...) to today's
    (read, clicked, dismissed): once, on open."""
    with Session(engine) as s:  # type: ignore[arg-type]
        s.execute(
            text(
                "UPDATE client_signal SET true_bits = (true_bits >> 1) & 7, mask_v = 2 "
                "WHERE mask_v IS NULL"
            )
        )
        s.commit()


def _configured_shuffler(profile_dir: Path) -> str | None:
    """SEALPOST_SHUFFLER_URL, else the profile's ``shuffler_url``."""
    configured = ClientSettings().shuffler_url
    if configured:
        return configured
    try:
        info = ProfileInfo.model_validate_json((profile_dir / "profile.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return info.shuffler_url
