"""``one_of``: a list bound as one parameter, with the same answers as ``IN`` on both backends."""

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from server import schema
from server.db import make_engine
from server.models import Account, MailboxEntry
from server.sql_lists import one_of
from tests.unit.test_mailbox_numbers import _rows


def _account(handle: str) -> Account:
    return Account(
        handle=handle,
        kind="person",
        display_name=handle,
        sign_key="k",
        box_key="k",
        created_at=0,
    )


def test_one_of_matches_in_on_each_backend(db_url: str) -> None:
    engine = make_engine(db_url)
    schema.upgrade(engine)
    try:
        with Session(engine) as session:
            session.add_all(_account(h) for h in ("ana", "bo", "cy", "dee"))
            rows = _rows(4)
            session.execute(MailboxEntry.__table__.insert(), rows)  # type: ignore[attr-defined]
            session.commit()
            seqs = sorted(session.scalars(select(MailboxEntry.seq)))

            def handles(values: list[str]) -> set[str]:
                query = select(Account.handle).where(one_of(Account.handle, values))
                return set(session.scalars(query))

            assert handles(["bo", "dee", "nobody", "bo"]) == {"bo", "dee"}
            assert handles([]) == set()
            assert handles(["it's", 'a "quote"', "ü"]) == set()  # bound, never spliced
            numbers = select(MailboxEntry.seq).where(one_of(MailboxEntry.seq, seqs[1:3]))
            assert sorted(session.scalars(numbers)) == seqs[1:3]
    finally:
        engine.dispose()


def test_one_sql_text_for_every_list_length() -> None:
    """What makes it cheap: the statement compiles once, whatever the list."""
    short = select(Account.handle).where(one_of(Account.handle, ["a"]))
    long = select(Account.handle).where(one_of(Account.handle, [str(i) for i in range(1000)]))
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        assert str(short.compile(dialect=dialect)) == str(long.compile(dialect=dialect))
    assert str(short.compile(dialect=sqlite.dialect())).count("?") == 1
