"""The person's side of interaction signals: one anonymous, noisy, delayed report per campaign.

When a campaign copy is stored and acked, the client obtains a blind token for it on the
authenticated channel and schedules the campaign's report for a random moment later in the
day (so a report's timing cannot be matched with the delivery, the published attack on
automatic receipts). Interactions (read, clicked, ...) set bits of that pending report. When
it is due, its bits go through randomized response (charged to the person's epsilon ledger;
with no budget left, or signals switched off, the bits are uniformly random and cost nothing,
so the report still exists and says nothing) and it is sent on the anonymous channel: a
separate HTTP client with no credentials, no handle and no message id.
"""

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlmodel import Field, Session, SQLModel, select

from client import tls
from client.ledger import PrivacyLedger
from client.relay_api import RelayAPI, RelayError
from client.store import create_tables
from shared.api import (
    SignalBatch,
    SignalResult,
    TokenBatchRequest,
    TokenBatchResponse,
    TokenRequest,
    TokenResponse,
)
from shared.encoding import b64decode, b64encode
from shared.signals import (
    DEFAULT_EPSILON_PER_BIT,
    BudgetExhausted,
    EpsilonLedger,
    Event,
    encode_report,
    event_bit,
    randomize,
    report_epsilon,
    uniform_bits,
)
from shared.tokens import Token, blind, finalize, new_token_input

DAY_S = 86_400


class PendingSignal(SQLModel, table=True):
    """One campaign's report, waiting for its moment. The true bits never leave the device."""

    __tablename__ = "client_signal"

    campaign_id: str = Field(primary_key=True)
    day: str
    token_input: str
    token_output: str
    true_bits: int
    send_after: int  # unix seconds
    sent: bool = False


@dataclass
class SignalSettings:
    enabled: bool = True  # optional signals; explicit choices go through prefs regardless
    max_delay_s: float = DAY_S  # reports leave at a random time within this after delivery
    epsilon_per_bit: float = DEFAULT_EPSILON_PER_BIT


class SignalAgent:
    def __init__(
        self, api: RelayAPI, engine: object, profile_dir: Path, ledger: PrivacyLedger
    ) -> None:
        self.api = api
        self.engine = engine
        self.dir = profile_dir
        self.ledger = ledger
        create_tables(engine, [PendingSignal.__table__])  # type: ignore[arg-type, attr-defined]
        self.settings = self._load_settings()
        self._rng = secrets.SystemRandom()
        # Unix seconds now. A simulation sets its virtual clock here, so that report days,
        # delays and the epsilon budget follow simulated time rather than the wall clock.
        self.clock: Callable[[], float] = time.time

    # --- settings and budget ----------------------------------------------------------------

    @property
    def _settings_path(self) -> Path:
        return self.dir / "signals.json"

    def _load_settings(self) -> SignalSettings:
        try:
            return SignalSettings(**json.loads(self._settings_path.read_text()))
        except FileNotFoundError:
            return SignalSettings()

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

    async def on_delivered(self, msg_id: str, campaign_id: str) -> None:
        """A campaign copy was stored and acked: get its token and schedule its report."""
        await self.on_delivered_many([(msg_id, campaign_id)])

    async def on_delivered_many(self, copies: list[tuple[str, str]]) -> None:
        """Campaign copies (``(msg_id, campaign_id)``, one per campaign) were stored and
        acked: get their tokens in one request, and schedule their reports."""
        with Session(self.engine) as s:  # type: ignore[arg-type]
            # One report per campaign, whatever happens.
            copies = [(m, c) for m, c in copies if s.get(PendingSignal, c) is None]
        if not copies:
            return
        inputs = [new_token_input() for _ in copies]
        blinds = [blind(token_input) for token_input in inputs]
        asked = [
            TokenRequest(msg_id=msg_id, blinded_element=b64encode(blinded))
            for (msg_id, _), (_, blinded) in zip(copies, blinds, strict=True)
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
        for (_, campaign_id), token_input, (blind_scalar, blinded), answer in zip(
            copies, inputs, blinds, answers, strict=True
        ):
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
                    true_bits=event_bit("delivered"),
                    send_after=int(now + self._rng.uniform(0, self.settings.max_delay_s)),
                )
            )
        with Session(self.engine) as s:  # type: ignore[arg-type]
            for row in rows:
                s.merge(row)
            s.commit()

    def record(self, campaign_id: str, event: Event) -> None:
        """Note an interaction on the campaign's pending report (it stays on this device)."""
        with Session(self.engine) as s:  # type: ignore[arg-type]
            row = s.get(PendingSignal, campaign_id)
            if row is None or row.sent:
                return
            row.true_bits |= event_bit(event)
            s.add(row)
            s.commit()

    def _noisy(self, true_bits: int, day: str) -> int:
        if not self.settings.enabled:
            return uniform_bits(self._rng)
        budget = self._budget()
        cost = report_epsilon(self.settings.epsilon_per_bit)
        try:
            budget.spend(day, cost)
        except BudgetExhausted:
            return uniform_bits(self._rng)
        self._save_budget(budget)
        return randomize(true_bits, self.settings.epsilon_per_bit, self._rng)

    async def flush(self, now: float | None = None) -> SignalResult | None:
        """Send every report whose moment has come, each in its own anonymous request.

        Call it from a loop of its own (the app does, every minute), not right after a
        signed request: an anonymous request that follows an account's request from the same
        address within milliseconds is easy to link to it."""
        now = self.clock() if now is None else now
        with Session(self.engine) as s:  # type: ignore[arg-type]
            due = list(
                s.exec(
                    select(PendingSignal).where(
                        PendingSignal.sent == False,  # noqa: E712
                        PendingSignal.send_after <= now,
                    )
                )
            )
        if not due:
            return None
        # The device's own random source: unpredictable to the relay (a seeded one in
        # simulations, so that a run can be repeated).
        self._rng.shuffle(due)
        counted = 0
        refused: dict[int, str] = {}
        for index, row in enumerate(due):
            # One request per report, each on a fresh connection: reports sent together
            # would tell the relay they come from the same person.
            noisy = self._noisy(row.true_bits, row.day)
            token = Token(b64decode(row.token_input), b64decode(row.token_output))
            report = encode_report(row.campaign_id, row.day, noisy, token).decode()
            result = await self._send_anonymously(report)
            counted += result.counted
            for why in result.refused.values():
                refused[index] = why
            with Session(self.engine) as s:  # type: ignore[arg-type]
                row.sent = True
                s.merge(row)
                s.commit()
        return SignalResult(counted=counted, refused=refused)

    async def _send_anonymously(self, report: str) -> SignalResult:
        body = SignalBatch(reports=[report]).model_dump_json().encode()
        url = self.api.base_url + "/v1/signals"
        headers = {"Content-Type": "application/json"}
        self.ledger.record("POST", url, {"channel": "anonymous", **headers}, body)
        # A fresh client: no connection, cookie, header or TLS context shared with the
        # account's channel.
        async with httpx.AsyncClient(timeout=15, verify=tls.anonymous_channel()) as anonymous:
            response = await anonymous.post(url, content=body, headers=headers)
        if response.status_code != 200:
            raise RelayError(response.status_code, "signals_refused", response.text[:200])
        return SignalResult.model_validate(response.json())
