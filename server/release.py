"""Deciding, at release time, whether each template message may reach its person.

Used by the dispatcher for scheduled messages and by the submission path for messages due
at once, so both apply exactly the same choices and caps.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from sqlalchemy import case, func, text
from sqlmodel import Session, col, select

from server.message_requests import RequestBook, RequestRules
from server.models import MARKETING, BusinessChoice, ChatContact, MailboxEntry, Preference
from server.sql_lists import one_of
from shared.choices import RecipientState, refusal

DAY_MS = 86_400_000


class Candidate(NamedTuple):
    recipient: str
    sender: str
    category: str
    expires_at: int | None


def decide(
    session: Session,
    candidates: Sequence[Candidate],
    now: int,
    daily_cap: int,
    requests: RequestRules,
) -> list[str | None]:
    """Per candidate, in order: None to release it, else "expired" or a refusal class.

    Earlier releases in the same call count towards later ones' caps, and a stranger's
    releases towards its message-request limits (server/message_requests.py).
    """
    _lock_persons(session, {c.recipient for c in candidates})
    states = _recipient_states(session, candidates, now)
    book = RequestBook.load(session, {(c.recipient, c.sender) for c in candidates}, now)
    sent_now: Counter[str] = Counter()  # marketing released in this call, per person
    outcomes: list[str | None] = []
    for c in candidates:
        if c.expires_at is not None and c.expires_at <= now:
            outcomes.append("expired")
            continue
        state = states[(c.recipient, c.sender)]
        if extra := sent_now[c.recipient]:
            state = replace(
                state,
                marketing_last_24h=state.marketing_last_24h + extra,
                marketing_last_7d=state.marketing_last_7d + extra,
            )
        reason = refusal(c.category, state, daily_cap)
        if reason is None and book.refusal(c.recipient, c.sender, requests):
            reason = "message_request"
        outcomes.append(reason)
        if reason is None:
            book.count(c.recipient, c.sender)
            if c.category == "marketing":
                sent_now[c.recipient] += 1
    book.save(session, now)
    return outcomes


def _lock_persons(session: Session, persons: set[str]) -> None:
    """Serialise releases to the same person across relay processes, so two of them cannot
    both see room under a cap and both release. Locks are taken in sorted order (no
    deadlock among them) and end with the transaction. SQLite has one writer anyway."""
    if not persons or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtext(p)) "
            "FROM (SELECT unnest(CAST(:persons AS text[])) AS p ORDER BY 1) AS ordered"
        ),
        {"persons": sorted(persons)},
    )


def _recipient_states(
    session: Session, rows: Sequence[Candidate], now: int
) -> dict[tuple[str, str], RecipientState]:
    """Each (person, business) pair's choices and recent marketing counts, in a few queries."""
    persons = {r.recipient for r in rows}
    prefs = {
        p.person: p
        for p in session.exec(select(Preference).where(one_of(Preference.person, persons)))
    }
    choices = {
        (c.person, c.business): c
        for c in session.exec(select(BusinessChoice).where(one_of(BusinessChoice.person, persons)))
    }
    chatted = {
        (c.person, c.business)
        for c in session.exec(select(ChatContact).where(one_of(ChatContact.person, persons)))
    }

    # Both windows in one pass over the person's recent marketing.
    day_start, week_start = now - DAY_MS, now - 7 * DAY_MS
    day: Counter[str] = Counter()
    week: Counter[str] = Counter()
    for person, in_day, in_week in session.execute(
        select(
            MailboxEntry.recipient,
            func.sum(case((col(MailboxEntry.released_at) > day_start, 1), else_=0)),
            func.count(),
        )
        .where(
            one_of(MailboxEntry.recipient, persons),
            MailboxEntry.category == MARKETING,
            col(MailboxEntry.released_at) > week_start,
        )
        .group_by(MailboxEntry.recipient)
    ):
        day[person], week[person] = int(in_day or 0), int(in_week)
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
