"""Message requests: whom a person accepts, and how much a stranger gets through before that.

A person accepts an account by writing to it or by accepting its message request. Anyone else
is a stranger: the relay lets through at most ``hold`` of a stranger's messages (chat or
template copies) until the person accepts, and at most ``per_day`` new strangers a day. What
a sender is told never depends on whether the person blocked them: a blocked sender's
messages are counted exactly as if they had been delivered.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, delete, insert, or_, update
from sqlmodel import Session, col, select

from server.models import Acceptance, MessageRequest
from server.sql_lists import one_of
from shared.api import ErrorDetail

DAY_MS = 86_400_000
Pair = tuple[str, str]  # (person, sender)
_REQUESTS = MessageRequest.__table__  # type: ignore[attr-defined]
_GROW = (
    update(_REQUESTS)
    .where(_REQUESTS.c.person == bindparam("who"), _REQUESTS.c.sender == bindparam("from_"))
    .values(delivered=_REQUESTS.c.delivered + bindparam("n"))
)


@dataclass(frozen=True)
class RequestRules:
    """The relay's limits on strangers (settings ``request_hold``, ``requests_per_day``)."""

    hold: int = 3
    per_day: int = 20

    def error(self, code: str, person: str) -> ErrorDetail:
        """What a sender is told when ``person`` does not take its message (chat only: a
        template copy is refused at release, where the business is told nothing per copy)."""
        if code == "request_pending":
            message = (
                f"{person} has not accepted your message request: a new contact's first "
                f"{self.hold} messages reach them, and no more until they accept it or reply. "
                "Wait for their answer."
            )
        else:
            message = (
                f"{person} has had message requests from {self.per_day} new contacts in the "
                "last 24 h, as many as they take; try tomorrow, or ask them to write to you first."
            )
        return ErrorDetail(code=code, message=message)


@dataclass
class RequestBook:
    """What a batch needs to know about some (person, sender) pairs, loaded once."""

    accepted: set[Pair]
    delivered: dict[Pair, int]  # a stranger's messages let through so far
    new_today: Counter[str]  # strangers let in per person in the last 24 h
    added: Counter[Pair] = field(default_factory=Counter)
    new: set[Pair] = field(default_factory=set)

    @classmethod
    def load(cls, session: Session, pairs: Iterable[Pair], now_ms: int) -> "RequestBook":
        pairs = set(pairs)
        if not pairs:
            return cls(set(), {}, Counter())
        persons = {p for p, _ in pairs}
        senders = {s for _, s in pairs}
        accepted = {
            (a.person, a.peer)
            for a in session.exec(
                select(Acceptance).where(
                    one_of(Acceptance.person, persons), one_of(Acceptance.peer, senders)
                )
            )
        }
        day_start = now_ms - DAY_MS
        rows = list(
            session.exec(
                select(MessageRequest).where(
                    one_of(MessageRequest.person, persons),
                    or_(
                        one_of(MessageRequest.sender, senders),
                        col(MessageRequest.first_at) > day_start,
                    ),
                )
            )
        )
        return cls(
            accepted,
            {(r.person, r.sender): r.delivered for r in rows if (r.person, r.sender) in pairs},
            Counter(r.person for r in rows if r.first_at > day_start),
        )

    def refusal(self, person: str, sender: str, rules: RequestRules) -> str | None:
        """``request_pending``, ``too_many_requests``, or None if this message may pass."""
        pair = (person, sender)
        if pair in self.accepted:
            return None
        held = self.delivered.get(pair)
        if held is None:
            return "too_many_requests" if self.new_today[person] >= rules.per_day else None
        return "request_pending" if held >= rules.hold else None

    def count(self, person: str, sender: str) -> None:
        """One more message of a stranger let through (no-op for an accepted sender)."""
        pair = (person, sender)
        if pair in self.accepted:
            return
        if pair not in self.delivered:
            self.delivered[pair] = 0
            self.new_today[person] += 1
            self.new.add(pair)
        self.delivered[pair] += 1
        self.added[pair] += 1

    def save(self, session: Session, now_ms: int) -> None:
        """Write what ``count`` added. Existing rows are incremented in SQL, so two relay
        processes counting at once lose nothing; two inserting the same new pair collide on
        the key, and the submission is retried (server/mailbox.py)."""
        fresh = [
            {"person": p, "sender": s, "delivered": self.added[(p, s)], "first_at": now_ms}
            for p, s in sorted(self.new)
        ]
        if fresh:
            session.execute(insert(_REQUESTS), fresh)
        grown = [
            {"who": p, "from_": s, "n": n}
            for (p, s), n in self.added.items()
            if (p, s) not in self.new
        ]
        if grown:  # one statement, many parameter sets: a campaign batch grows a thousand
            session.execute(_GROW, grown)
        self.added.clear()
        self.new.clear()


def accept(session: Session, person: str, peers: Iterable[str], now_ms: int) -> None:
    """``person`` accepts these accounts (wrote to them, or accepted their request)."""
    peers = set(peers)
    if not peers:
        return
    known = set(
        session.exec(
            select(Acceptance.peer).where(
                Acceptance.person == person, one_of(Acceptance.peer, peers)
            )
        )
    )
    for peer in sorted(peers - known):
        session.add(Acceptance(person=person, peer=peer, at=now_ms))
    if peers - known:
        session.execute(
            delete(_REQUESTS).where(
                _REQUESTS.c.person == person, one_of(_REQUESTS.c.sender, sorted(peers - known))
            )
        )


def withdraw(session: Session, person: str, peer: str) -> None:
    """``person`` no longer accepts ``peer``: it is a stranger again, with a fresh request."""
    session.execute(
        delete(Acceptance).where(col(Acceptance.person) == person, col(Acceptance.peer) == peer)
    )


def accepted_by(session: Session, person: str) -> list[str]:
    """Everyone ``person`` accepts, sorted."""
    return sorted(session.exec(select(Acceptance.peer).where(Acceptance.person == person)))
