"""Releases scheduled template messages when due, applying each person's choices, and
expires what was never delivered. Runs in a background thread; tests call ``run_once``."""

import logging
import threading
from collections import Counter
from dataclasses import replace

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from server.billing import movements_of, refund
from server.choices import RecipientState, refusal
from server.clock import Clock
from server.models import BusinessChoice, ChatContact, MailboxEntry, Preference
from server.notify import MailboxNotifier

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
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.notifier = notifier
        self.daily_cap = daily_cap
        self.interval_s = interval_s
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one pass at a time within this process

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dispatcher")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread:
            self._thread.join(timeout=10)

    def kick(self) -> None:
        """Run a pass now (new messages may be due) instead of at the next tick."""
        self._kick.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._kick.wait(self.interval_s)
            self._kick.clear()
            if self._stop.is_set():
                return
            try:
                self.run_once()
            except Exception:  # a bad pass must not end delivery for good
                log.exception("dispatcher pass failed; retrying at the next tick")

    def run_once(self) -> int:
        """Release every due message and expire overdue ones; returns how many changed."""
        changed = 0
        with self._lock:
            while True:
                released, expired = self._release_batch(), self._expire_batch()
                changed += released + expired
                if released < BATCH and expired < BATCH:
                    return changed

    def _release_batch(self) -> int:
        now = self.clock.now_ms()
        with Session(self.engine) as session:
            due = list(
                session.exec(
                    select(MailboxEntry)
                    .where(MailboxEntry.state == "scheduled", col(MailboxEntry.not_before) <= now)
                    .order_by(col(MailboxEntry.not_before), col(MailboxEntry.seq))
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if not due:
                return 0
            states = _recipient_states(session, due, now)
            refunds = []
            woken = set()
            for row in due:
                if row.expires_at is not None and row.expires_at <= now:
                    row.state, row.ciphertext = "expired", b""
                    refunds.append(("expired", row))
                    continue
                key = (row.recipient, row.sender)
                reason = refusal(row.category, states[key], self.daily_cap)
                if reason:
                    row.state, row.refusal, row.ciphertext = "refused", reason, b""
                    refunds.append(("refused", row))
                    continue
                row.state, row.released_at = "pending", now
                woken.add(row.recipient)
                if row.category == "marketing":
                    # Later messages in this same pass must see this one in the counts.
                    for (person, business), state in list(states.items()):
                        if person == row.recipient:
                            states[(person, business)] = _bump(state)
            for why in ("refused", "expired"):
                rows = [r for w, r in refunds if w == why]
                if rows:
                    refund(
                        session,
                        movements_of((r.campaign_id, r.sender, r.price) for r in rows),
                        now,
                        why,
                    )
            session.commit()
        self.notifier.publish(woken)
        return len(due)

    def _expire_batch(self) -> int:
        now = self.clock.now_ms()
        with Session(self.engine) as session:
            overdue = list(
                session.exec(
                    select(MailboxEntry)
                    .where(
                        col(MailboxEntry.state).in_(["pending", "scheduled"]),
                        col(MailboxEntry.expires_at) <= now,
                    )
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in overdue:
                row.state, row.ciphertext = "expired", b""
            paid = [(r.campaign_id, r.sender, r.price) for r in overdue if r.price]
            if paid:
                refund(session, movements_of(paid), now, "expired")
            session.commit()
        return len(overdue)


def _bump(state: RecipientState) -> RecipientState:
    return replace(
        state,
        marketing_last_24h=state.marketing_last_24h + 1,
        marketing_last_7d=state.marketing_last_7d + 1,
    )


def _recipient_states(
    session: Session, rows: list[MailboxEntry], now: int
) -> dict[tuple[str, str], RecipientState]:
    """Each (person, business) pair's choices and recent marketing counts, in a few queries."""
    persons = {r.recipient for r in rows}
    prefs = {
        p.person: p
        for p in session.exec(select(Preference).where(col(Preference.person).in_(persons)))
    }
    choices = {
        (c.person, c.business): c
        for c in session.exec(select(BusinessChoice).where(col(BusinessChoice.person).in_(persons)))
    }
    chatted = {
        (c.person, c.business)
        for c in session.exec(select(ChatContact).where(col(ChatContact.person).in_(persons)))
    }

    def released_since(since: int) -> Counter[str]:
        query = (
            select(MailboxEntry.recipient, func.count())
            .where(
                col(MailboxEntry.recipient).in_(persons),
                MailboxEntry.category == "marketing",
                col(MailboxEntry.released_at) > since,
            )
            .group_by(MailboxEntry.recipient)
        )
        return Counter(dict(session.exec(query).all()))  # type: ignore[arg-type]

    day, week = released_since(now - DAY_MS), released_since(now - 7 * DAY_MS)
    states = {}
    for row in rows:
        key = (row.recipient, row.sender)
        pref = prefs.get(row.recipient)
        choice = choices.get(key)
        states[key] = RecipientState(
            blocked=bool(choice and choice.blocked),
            promotions_stopped=bool(choice and choice.promotions_stopped),
            level=pref.level if pref else "all",
            weekly_limit=pref.weekly_limit if pref else None,
            has_chatted=key in chatted,
            marketing_last_24h=day[row.recipient],
            marketing_last_7d=week[row.recipient],
        )
    return states
