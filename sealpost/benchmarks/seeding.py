"""Accounts written straight into a relay database: set-up for benchmarks and scale tests,
where registering thousands of people over HTTP would measure the wrong thing."""

from sqlmodel import Session

from server import schema
from server.db import make_engine
from server.models import Acceptance, Account
from shared.keys import AccountKeys


def seed_persons(db_url: str, count: int, prefix: str = "person") -> list[tuple[str, AccountKeys]]:
    """Migrate the database if needed and add ``count`` persons (+39); returns their keys."""
    engine = make_engine(db_url)
    schema.upgrade(engine)
    people = [(f"{prefix}{i:06d}", AccountKeys.generate()) for i in range(count)]
    with Session(engine) as session:
        session.add_all(
            Account(
                handle=handle,
                kind="person",
                display_name=handle,
                country="+39",
                sign_key=keys.public.sign_b64,
                box_key=keys.public.box_b64,
                created_at=0,
            )
            for handle, keys in people
        )
        session.commit()
    engine.dispose()
    return people


def seed_acceptances(db_url: str, persons: list[str], peer: str) -> None:
    """``persons`` accept ``peer``, as if each had written to it once: its chats reach them
    as a contact's, not as message requests."""
    engine = make_engine(db_url)
    with Session(engine) as session:
        session.add_all(Acceptance(person=p, peer=peer, at=0) for p in persons)
        session.commit()
    engine.dispose()
