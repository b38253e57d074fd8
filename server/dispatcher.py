"""Releases scheduled template messages when due, applying each person's choices, expires
what was never delivered, and publishes campaign figures when due (server/figures.py). Copies
of a paused template wait for its pause to end; a disabled template's are withdrawn
(server/quality.py, server/withdrawal.py). Runs in a background thread; tests call
``run_once``."""

import logging
import threading
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, Row, select, update
from sqlmodel import Session

from server.billing import movements_of, refund, settle_release
from server.clock import Clock
from server.figures import FiguresPolicy, publish_due
from server.message_requests import RequestRules
from server.models import PENDING, SCHEDULED, MailboxEntry
from server.notify import MailboxNotifier, announce
from server.quality import paused_campaigns
from server.release import Candidate, decide
from server.sql_lists import one_of
from server.withdrawal import withdraw_disabled

log = logging.getLogger("sealpost.dispatcher")

DAY_MS = 86_400_000
BATCH = 500


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        notifier: MailboxNotifier,
        *,
        daily_cap: int,
        interval_s: float,
        figures: FiguresPolicy | None = None,
        requests: RequestRules | None = None,
        template_quality: bool = True,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.notifier = notifier
        self.daily_cap = daily_cap
        self.requests = requests or RequestRules()
        self.interval_s = interval_s
        self.figures = figures
        # Hold a paused template's copies and withdraw a disabled one's (server/quality.py).
        self.template_quality = template_quality
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one pass at a time within this process
        # Whether a template may have been disabled since its campaigns were last stopped:
        # true at start-up (another process, or this one before a restart, may have
        # published), then after each publication; not a query every tick.
        self._disables_to_apply = True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dispatcher")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_once()
            except Exception:  # a bad pass must not end delivery for good
                log.exception("dispatcher pass failed; retrying at the next tick")

    def run_once(self) -> int:
        """Release every due message, expire overdue ones, then publish the campaign figures
        now due; returns how many messages changed."""
        changed = 0
        with self._lock:
            if self._disables_to_apply:  # at start-up, and until a withdrawal commits
                changed += self._withdraw_disabled()
            while True:
                released, expired = self._release_batch(), self._expire_batch()
                changed += released + expired
                if released < BATCH and expired < BATCH:
                    break
            if self.figures is not None:
                with Session(self.engine) as session:
                    published = publish_due(session, self.figures, self.clock.now_ms())
                # Only a publication disables a template: then stop its campaigns at once.
                if published:
                    self._disables_to_apply = True
                    changed += self._withdraw_disabled()
        return changed

    def _withdraw_disabled(self) -> int:
        if not self.template_quality:
            return 0
        with Session(self.engine) as session:
            withdrawn = withdraw_disabled(session, self.clock.now_ms())
        self._disables_to_apply = False
        return withdrawn

    def _release_batch(self) -> int:
        now = self.clock.now_ms()
        table = MailboxEntry.__table__  # type: ignore[attr-defined]
        with Session(self.engine) as session:
            # Plain rows and set-based updates: a campaign releases thousands at a time.
            due = list(
                session.execute(
                    select(
                        table.c.seq,
                        table.c.recipient,
                        table.c.sender,
                        table.c.category,
                        table.c.campaign_id,
                        table.c.price,
                        table.c.expires_at,
                    )
                    .where(table.c.state == SCHEDULED, table.c.not_before <= now)
                    .order_by(table.c.not_before, table.c.seq)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if not due:
                return 0
            batch_size = len(due)
            due = self._hold_paused(session, due, now)
            if not due:
                session.commit()
                return batch_size
            outcomes = decide(
                session,
                [Candidate(r.recipient, r.sender, r.category, r.expires_at) for r in due],
                now,
                self.daily_cap,
                self.requests,
            )
            released: list[int] = []
            refused: dict[str, list[int]] = defaultdict(list)
            woken = set()
            for row, outcome in zip(due, outcomes, strict=True):
                if outcome is None:
                    released.append(row.seq)
                    woken.add(row.recipient)
                    continue
                refused[outcome].append(row.seq)
            if released:
                session.execute(
                    update(table)
                    .where(one_of(table.c.seq, released))
                    .values(state="pending", released_at=now)
                )
            for reason, seqs in refused.items():
                state, why = ("expired", None) if reason == "expired" else ("refused", reason)
                session.execute(
                    update(table)
                    .where(one_of(table.c.seq, seqs))
                    .values(state=state, refusal=why, ciphertext=b"")
                )
            settle_release(
                session,
                (
                    ((r.campaign_id, r.sender, r.price), outcome)
                    for r, outcome in zip(due, outcomes, strict=True)
                ),
                now,
            )
            announce(session, woken, self.notifier.origin)
            session.commit()
        self.notifier.publish(woken)
        return batch_size

    def _hold_paused(self, session: Session, due: list[Row[Any]], now: int) -> list[Row[Any]]:
        """Move the send time of copies whose template is paused to the pause's end, and
        return the others: a paused template sends nothing, scheduled or new."""
        if not self.template_quality:
            return due
        paused = paused_campaigns(session, {r.campaign_id for r in due if r.campaign_id}, now)
        if not paused:
            return due
        table = MailboxEntry.__table__  # type: ignore[attr-defined]
        held: dict[int, list[int]] = defaultdict(list)
        for row in due:
            if row.campaign_id in paused:
                held[paused[row.campaign_id]].append(row.seq)
        for until, seqs in held.items():
            session.execute(update(table).where(one_of(table.c.seq, seqs)).values(not_before=until))
        return [r for r in due if r.campaign_id not in paused]

    def _expire_batch(self) -> int:
        now = self.clock.now_ms()
        table = MailboxEntry.__table__  # type: ignore[attr-defined]
        with Session(self.engine) as session:
            overdue = list(
                session.execute(
                    select(
                        table.c.seq,
                        table.c.sender,
                        table.c.campaign_id,
                        table.c.price,
                        table.c.state,
                    )
                    .where(table.c.state.in_([PENDING, SCHEDULED]), table.c.expires_at <= now)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if not overdue:
                return 0
            session.execute(
                update(table)
                .where(one_of(table.c.seq, [r.seq for r in overdue]))
                .values(state="expired", ciphertext=b"")
            )
            # A pending copy was charged when released; only a copy never released (its
            # whole life spent scheduled) is refunded, and that depends on time alone.
            unsent = [
                (r.campaign_id, r.sender, r.price)
                for r in overdue
                if r.price and r.state == "scheduled"
            ]
            if unsent:
                refund(session, movements_of(unsent), now, "expired")
            session.commit()
        return len(overdue)
