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

from sqlalchemy import and_, bindparam, delete, insert, or_, text, update
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

_GROW_PG = text(
    "UPDATE relay_message_request AS r SET delivered = r.delivered + v.n "
    "FROM (SELECT unnest(CAST(:persons AS text[])) AS p, unnest(CAST(:senders AS text[])) AS s, "
    "unnest(CAST(:ns AS integer[])) AS n) AS v WHERE r.person = v.p AND r.sender = v.s"
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
    writer_accepts: set[str] = field(default_factory=set)  # see ``load``'s ``writer``

    @classmethod
    def load(
        cls,
        session: Session,
        pairs: Iterable[Pair],
        now_ms: int,
        *,
        writer: str | None = None,
        written: Iterable[str] = (),
    ) -> "RequestBook":
        """The book for these (person, sender) pairs. With ``writer``, the same query also
        finds which of ``written`` the writer accepts already (see ``accept``)."""
        pairs = set(pairs)
        written = set(written) if writer is not None else set()
        book = cls(set(), {}, Counter())
        if not pairs and not written:
            return book
        wanted = []
        if pairs:
            wanted.append(
                and_(
                    one_of(Acceptance.person, {p for p, _ in pairs}),
                    one_of(Acceptance.peer, {s for _, s in pairs}),
                )
            )
        if written:
            wanted.append(and_(col(Acceptance.person) == writer, one_of(Acceptance.peer, written)))
        for person, peer in session.execute(
            select(Acceptance.person, Acceptance.peer).where(or_(*wanted))
        ):
            if (person, peer) in pairs:
                book.accepted.add((person, peer))
            if person == writer and peer in written:
                book.writer_accepts.add(peer)
        # Contacts are the common case (all of a chat batch, as a rule): the stranger's
        # counts are read only for pairs that are not accepted.
        strangers = pairs - book.accepted
        if not strangers:
            return book
        persons = {p for p, _ in strangers}
        day_start = now_ms - DAY_MS
        # Columns, not ORM objects: a campaign batch reads a thousand of these rows.
        rows = session.execute(
            select(
                MessageRequest.person,
                MessageRequest.sender,
                MessageRequest.delivered,
                MessageRequest.first_at,
            ).where(
                one_of(MessageRequest.person, persons),
                or_(
                    one_of(MessageRequest.sender, {s for _, s in strangers}),
                    col(MessageRequest.first_at) > day_start,
                ),
            )
        )
        for person, sender, delivered, first_at in rows:
            if (person, sender) in strangers:
                book.delivered[(person, sender)] = delivered
            if first_at > day_start:
                book.new_today[person] += 1
        return book

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
        if grown and session.get_bind().dialect.name == "postgresql":
            # One statement over arrays: a campaign batch grows a thousand rows, and even
            # pipelined, a thousand parameter sets cost PostgreSQL 25 ms.
            session.execute(
                _GROW_PG,
                {
                    "persons": [g["who"] for g in grown],
                    "senders": [g["from_"] for g in grown],
                    "ns": [g["n"] for g in grown],
                },
            )
        elif grown:  # SQLite runs in-process: many parameter sets of one statement are cheap
            session.execute(_GROW, grown)
        self.added.clear()
        self.new.clear()


def accept(
    session: Session,
    person: str,
    peers: Iterable[str],
    now_ms: int,
    *,
    known: set[str] | None = None,
) -> None:
    """``person`` accepts these accounts (wrote to them, or accepted their request);
    ``known``, those of them it accepts already, if the caller looked them up."""
    peers = set(peers)
    if not peers:
        return
    if known is None:
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
