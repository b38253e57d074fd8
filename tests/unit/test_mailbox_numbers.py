"""Mailbox sequence numbers of a stored batch, on SQLite's fast path (a plain executemany,
numbers worked out from the last rowid) and on its fallback when they are not consecutive."""

import secrets

from sqlmodel import Session, select

from server.db import make_engine
from server.embedded import EmbeddedRelay
from server.mailbox import _insert_rows
from server.models import MailboxEntry
from server.settings import RelaySettings

COLUMNS = (
    "msg_id, sender, recipient, kind, category, template_id, campaign_id, not_before, "
    "expires_at, digest, ciphertext, received_at, state, released_at, acked_at, price, refusal"
)


def _rows(n: int) -> list[dict]:
    return [
        {
            "msg_id": secrets.token_hex(16),
            "sender": "shop",
            "recipient": f"p{i:03d}",
            "kind": "chat",
            "category": "service",
            "template_id": None,
            "campaign_id": None,
            "not_before": None,
            "expires_at": None,
            "digest": secrets.token_hex(32),
            "ciphertext": secrets.token_bytes(40),
            "received_at": 1,
            "state": "pending",
            "released_at": 1,
            "acked_at": None,
            "price": 0,
            "refusal": None,
        }
        for i in range(n)
    ]


def _stored(session: Session) -> dict[str, int]:
    return dict(session.exec(select(MailboxEntry.msg_id, MailboxEntry.seq)).all())  # type: ignore[arg-type]


def test_batch_numbers_match_what_was_stored(tmp_path):
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    with EmbeddedRelay(RelaySettings(db=url)):
        pass  # brings the schema up to date
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            first = _rows(5)
            seqs = _insert_rows(s, first)
            s.commit()
            stored = _stored(s)
            assert seqs == [stored[r["msg_id"]] for r in first]
            assert seqs == list(range(seqs[0], seqs[0] + 5))

        # Another row slipped in after each of ours (here by a trigger): the numbers are
        # not consecutive, and the fast path must notice and ask.
        with engine.begin() as c:
            new = ", ".join(
                "NEW.msg_id || '-x'" if col == "msg_id" else f"NEW.{col}"
                for col in COLUMNS.split(", ")
            )
            c.exec_driver_sql(
                "CREATE TRIGGER interleave AFTER INSERT ON relay_mailbox "
                "WHEN NEW.msg_id NOT LIKE '%-x' BEGIN "
                f"INSERT INTO relay_mailbox ({COLUMNS}) VALUES ({new}); END"
            )
        with Session(engine) as s:
            second = _rows(4)
            seqs = _insert_rows(s, second)
            s.commit()
            stored = _stored(s)
            assert seqs == [stored[r["msg_id"]] for r in second]
            assert seqs != list(range(seqs[0], seqs[0] + 4))  # really not consecutive
    finally:
        engine.dispose()
