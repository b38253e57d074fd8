"""The device's local store (SQLite via SQLModel): conversations, messages, outbox, contacts.

Everything a person reads lives here, decrypted; the relay only ever holds sealed bytes.
"""

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Index, Table, event, func, inspect
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.util import LRUCache
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

# A copy the device held back because of the person's own choices (client/local_choices.py):
# stored with the reason, never shown as a message, and not counted as unread.
HIDDEN_BY_CHOICE = "hidden_by_choice"


class Contact(SQLModel, table=True):
    """A cached key-directory entry (keys are pinned on first use).

    ``verified`` is the directory's verified-business mark. ``safety_verified`` is the person's
    own: they compared the safety number with this contact. When the directory later gives other
    keys, those wait in ``new_sign_key``/``new_box_key`` until the person accepts them: messages
    signed with them are quarantined and nothing is sealed to them meanwhile (DESIGN: "a change
    is shown to the person").
    """

    __tablename__ = "client_contact"

    handle: str = Field(primary_key=True)
    kind: str
    display_name: str
    verified: bool = False
    sign_key: str
    box_key: str
    safety_verified: bool = False
    new_sign_key: str | None = None
    new_box_key: str | None = None
    key_changed_at: int | None = Field(default=None, description="When the change was seen (ms)")

    @property
    def key_changed(self) -> bool:
        """The directory gave other keys than the pinned ones, not accepted yet."""
        return self.new_sign_key is not None


class CachedTemplate(SQLModel, table=True):
    """A template fetched from the registry, kept once its hash checked out."""

    __tablename__ = "client_template"

    id: str = Field(primary_key=True)
    business: str
    hash: str
    definition: str


class Conversation(SQLModel, table=True):
    __tablename__ = "client_conversation"

    peer: str = Field(primary_key=True)
    display_name: str
    kind: str = "person"
    verified: bool = False
    unread: int = 0
    last_at: int = 0
    # False while this is a message request: the peer wrote first and the person has neither
    # written back nor accepted it. Shown apart, and its messages are not counted as unread.
    accepted: bool = False


class StoredMessage(SQLModel, table=True):
    """One message, in or out. ``status``: queued or sent or failed (outgoing), verified or
    quarantined (incoming)."""

    __tablename__ = "client_message"
    __table_args__ = (Index("ix_client_message_peer_time", "peer", "sent_at"),)

    msg_id: str = Field(primary_key=True)
    peer: str
    direction: str  # "in" | "out"
    sender: str
    recipient: str
    kind: str = "chat"
    category: str = "service"
    text: str | None = None
    label: str | None = Field(default=None, description="Marketing / Utility / Authentication")
    payload_json: str | None = None
    rendered_json: str | None = Field(default=None, description="RenderedTemplate, for buttons")
    sent_at: int
    received_at: int | None = None
    status: str
    quarantine_reason: str | None = None
    quarantine_detail: str | None = None
    envelope_json: str | None = Field(default=None, description="Kept for quarantined messages")
    campaign_id: str | None = Field(default=None, description="The envelope's campaign, if any")


class OutboxEntry(SQLModel, table=True):
    """A message typed but not yet accepted by the relay; survives crashes and restarts.

    ``envelope_json`` is filled once sealed, and resent byte for byte so that a retry after a
    lost answer is recognised by the relay as a duplicate rather than a conflict.
    """

    __tablename__ = "client_outbox"

    msg_id: str = Field(primary_key=True)
    recipient: str
    envelope_json: str | None = None
    attempts: int = 0
    last_error: str | None = None


CLIENT_TABLES = [
    t.__table__  # type: ignore[attr-defined]
    for t in (Contact, CachedTemplate, Conversation, StoredMessage, OutboxEntry)
]

# Every column of a message row with its default (None for the required ones, always given).
_MESSAGE_DEFAULTS: dict[str, Any] = {
    name: None if field.is_required() else field.default
    for name, field in StoredMessage.model_fields.items()
}


def message_row(**fields: Any) -> dict[str, Any]:
    """A complete ``client_message`` row: ``fields`` over the columns' defaults."""
    return {**_MESSAGE_DEFAULTS, **fields}


_MESSAGE_MAPPER = inspect(StoredMessage)
_MESSAGE_COLUMNS = [c.name for c in StoredMessage.__table__.columns]  # type: ignore[attr-defined]
_INSERT_MESSAGES = (
    f"INSERT INTO client_message ({', '.join(_MESSAGE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _MESSAGE_COLUMNS)})"
)


# A new conversation, or one more unread message (and maybe a later time) in an existing one.
_UPSERT_CONVERSATION = (
    "INSERT INTO client_conversation "
    "(peer, display_name, kind, verified, unread, last_at, accepted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (peer) DO UPDATE SET "
    # A conversation accepted before any message (last_at 0) takes the directory's name.
    "display_name = CASE WHEN last_at = 0 THEN excluded.display_name ELSE display_name END, "
    "kind = CASE WHEN last_at = 0 THEN excluded.kind ELSE kind END, "
    "verified = CASE WHEN last_at = 0 THEN excluded.verified ELSE verified END, "
    "unread = unread + excluded.unread, last_at = MAX(last_at, excluded.last_at)"
)


def _stored_among(conn: Connection, msg_ids: Iterable[str]) -> set[str]:
    ids = list(msg_ids)
    try:
        # One bound parameter however many ids: no limit to hit, no statement per size.
        found = conn.exec_driver_sql(
            "SELECT msg_id FROM client_message WHERE msg_id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        )
        return {msg_id for (msg_id,) in found}
    except OperationalError:  # an SQLite built without JSON functions
        found_ids: set[str] = set()
        for i in range(0, len(ids), 500):
            query = select(StoredMessage.msg_id).where(
                col(StoredMessage.msg_id).in_(ids[i : i + 500])
            )
            found_ids.update(conn.execute(query).scalars())
        return found_ids


def stored_message(row: dict[str, Any]) -> StoredMessage:
    """A committed message ``row`` as a detached StoredMessage, as a query would load it.

    Several times cheaper than ``StoredMessage(**row)``, which counts at thousands of messages
    per catch-up. Every column is in ``row``, so no attribute is left unloaded.
    """
    message = StoredMessage._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    message.__dict__.update(row)
    instance_state(message).key = _MESSAGE_MAPPER.identity_key_from_primary_key((row["msg_id"],))
    return message


class _StoreDialect(SQLiteDialect_pysqlite):
    """SQLite as every local store uses it. All its instances are equal, so that every store
    opened in a process shares one cache of compiled SQL (the cache is keyed by dialect): a
    tester's process may hold a thousand stores, and each would compile every statement anew,
    which cost more than running them."""

    supports_statement_cache = True

    def __eq__(self, other: object) -> bool:
        return type(other) is _StoreDialect

    def __hash__(self) -> int:
        return hash(_StoreDialect)


registry.register("sqlite.sealpost_store", __name__, "_StoreDialect")
_COMPILED_SQL: LRUCache[Any, Any] = LRUCache(500)


_NEW_STORE_DDL: dict[tuple[str, ...], list[str]] = {}


def create_tables(engine: Engine, tables: list[Table]) -> None:
    """Create ``tables`` and their indexes where missing.

    A new store gets them from DDL compiled once per process, in one transaction; a store
    that has any of them already goes through ``create_all``, which checks each one (and is
    several times slower: it counts when a tester's process opens a thousand stores).
    """
    names = tuple(t.name for t in tables)
    with engine.begin() as conn:
        existing = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        if set(existing.scalars()).isdisjoint(names):
            ddl = _NEW_STORE_DDL.get(names)
            if ddl is None:
                ddl = [str(CreateTable(t).compile(dialect=engine.dialect)) for t in tables]
                ddl += [
                    str(CreateIndex(index).compile(dialect=engine.dialect))
                    for t in tables
                    for index in sorted(t.indexes, key=lambda i: i.name or "")
                ]
                _NEW_STORE_DDL[names] = ddl
            for statement in ddl:
                conn.exec_driver_sql(statement)
            return
    SQLModel.metadata.create_all(engine, tables=tables)


def add_missing_columns(engine: Engine, added: dict[str, dict[str, str]]) -> None:
    """Add the columns (``{table: {column: SQL type}}``, each nullable or with a default)
    that a table made by an older version lacks."""
    with engine.begin() as conn:
        for table, columns in added.items():
            have = {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


class LocalStore:
    def __init__(self, path: Path) -> None:
        self.engine: Engine = create_engine(
            f"sqlite+sealpost_store:///{path}",
            connect_args={"check_same_thread": False, "timeout": 30},
            execution_options={"compiled_cache": _COMPILED_SQL},
        )

        @event.listens_for(self.engine, "connect")
        def _tune(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        create_tables(self.engine, CLIENT_TABLES)
        self._add_missing_columns()
        configure_mappers()  # stored_message builds instances without a query
        # Registry templates whose hash checked out never change: kept once read.
        self._templates: dict[str, CachedTemplate] = {}

    def _add_missing_columns(self) -> None:
        """Stores created by older versions lack newer columns: add them in place."""
        add_missing_columns(
            self.engine,
            {
                "client_message": {"campaign_id": "VARCHAR"},
                # Conversations older than message requests were all the person's own choosing.
                "client_conversation": {"accepted": "BOOLEAN NOT NULL DEFAULT 1"},
                "client_contact": {
                    # NOT NULL as create_all makes it; the default gives existing rows their
                    # value.
                    "safety_verified": "BOOLEAN NOT NULL DEFAULT 0",
                    "new_sign_key": "VARCHAR",
                    "new_box_key": "VARCHAR",
                    "key_changed_at": "INTEGER",
                },
            },
        )

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    # --- contacts --------------------------------------------------------------------------

    def contact(self, handle: str) -> Contact | None:
        with self.session() as s:
            return s.get(Contact, handle)

    def template(self, template_id: str) -> CachedTemplate | None:
        cached = self._templates.get(template_id)
        if cached is None:
            with self.session() as s:
                cached = s.get(CachedTemplate, template_id)
            if cached is not None:
                self._templates[template_id] = cached
        return cached

    def save_template(self, template: CachedTemplate) -> None:
        with self.session() as s:
            s.merge(template)
            s.commit()
        self._templates.pop(template.id, None)

    def save_contact(self, contact: Contact) -> None:
        with self.session() as s:
            s.merge(contact)
            s.commit()

    def quarantined_from(self, peer: str, reasons: Iterable[str]) -> list[StoredMessage]:
        """Messages from ``peer`` held in quarantine for one of ``reasons``, oldest first."""
        with self.session() as s:
            query = (
                select(StoredMessage)
                .where(
                    StoredMessage.peer == peer,
                    StoredMessage.direction == "in",
                    StoredMessage.status == "quarantined",
                    col(StoredMessage.quarantine_reason).in_(list(reasons)),
                )
                .order_by(col(StoredMessage.sent_at), col(StoredMessage.msg_id))
            )
            return list(s.exec(query))

    def replace_messages(self, rows: list[dict[str, Any]]) -> None:
        """Overwrite stored messages with complete rows (see :func:`message_row`), in one
        transaction: a quarantined message released once its sender's new key is accepted."""
        if not rows:
            return
        with self.session() as s:
            for row in rows:
                s.merge(StoredMessage(**row))
            s.commit()

    # --- messages --------------------------------------------------------------------------

    def stored_ids(self, msg_ids: Iterable[str]) -> set[str]:
        """Which of ``msg_ids`` are already in the store."""
        with self.engine.connect() as conn:
            return _stored_among(conn, msg_ids)

    def add_incoming_rows(
        self, rows: list[dict[str, Any]], conversations: dict[str, Conversation]
    ) -> list[dict[str, Any]]:
        """Store received messages (complete rows, see :func:`message_row`) in one transaction,
        each at most once; returns the rows that were new, in order (:func:`stored_message`
        makes a StoredMessage of one).

        Each row's conversation gets its unread count and latest time updated; one the store
        does not have yet is made from ``conversations`` (which holds one for every peer).
        Nothing is stored unless everything is: the caller acks only after this.
        """
        if not rows:
            return []
        try:
            with self.engine.begin() as conn:
                have = _stored_among(conn, (r["msg_id"] for r in rows))
                fresh: list[dict[str, Any]] = []
                for row in rows:
                    if row["msg_id"] not in have:
                        have.add(row["msg_id"])
                        fresh.append(row)
                if not fresh:
                    return []
                arrived: dict[str, tuple[int, int]] = {}  # peer -> (messages, latest sent_at)
                for row in fresh:
                    count, latest = arrived.get(row["peer"], (0, 0))
                    # A copy the person's own choices hid is kept, with why, but is not news.
                    unread = row.get("quarantine_reason") != HIDDEN_BY_CHOICE
                    arrived[row["peer"]] = (count + unread, max(latest, row["sent_at"]))
                conn.exec_driver_sql(
                    _UPSERT_CONVERSATION,
                    [
                        (
                            c.peer,
                            c.display_name,
                            c.kind,
                            c.verified,
                            c.unread + n,
                            max(c.last_at, t),
                            c.accepted,
                        )
                        for c, (n, t) in ((conversations[p], a) for p, a in arrived.items())
                    ],
                )
                conn.exec_driver_sql(
                    _INSERT_MESSAGES, [tuple(row[c] for c in _MESSAGE_COLUMNS) for row in fresh]
                )
        except IntegrityError:  # another sync of this profile stored one of them first
            return self._add_one_by_one(rows, conversations) if len(rows) > 1 else []
        return fresh

    def _add_one_by_one(
        self, rows: list[dict[str, Any]], conversations: dict[str, Conversation]
    ) -> list[dict[str, Any]]:
        stored: list[dict[str, Any]] = []
        for row in rows:
            stored += self.add_incoming_rows([row], conversations)
        return stored

    def queue_outgoing(self, message: StoredMessage, conversation: Conversation) -> None:
        with self.session() as s:
            convo = s.get(Conversation, conversation.peer) or conversation
            convo.last_at = max(convo.last_at, message.sent_at)
            convo.accepted = True  # writing to someone accepts them, here as at the relay
            s.add(convo)
            s.add(message)
            s.add(OutboxEntry(msg_id=message.msg_id, recipient=message.recipient))
            s.commit()

    def outbox(self) -> list[OutboxEntry]:
        with self.session() as s:
            return list(s.exec(select(OutboxEntry)))

    def update_outbox(self, entry: OutboxEntry) -> None:
        with self.session() as s:
            s.merge(entry)
            s.commit()

    def mark_sent(self, msg_id: str, status: str = "sent", error: str | None = None) -> None:
        with self.session() as s:
            message = s.get(StoredMessage, msg_id)
            if message:
                message.status = status
                message.quarantine_detail = error
                s.add(message)
            entry = s.get(OutboxEntry, msg_id)
            if entry:
                s.delete(entry)
            s.commit()

    def conversations(self) -> list[Conversation]:
        with self.session() as s:
            return list(s.exec(select(Conversation).order_by(col(Conversation.last_at).desc())))

    def messages(self, peer: str | None = None) -> list[StoredMessage]:
        with self.session() as s:
            query = select(StoredMessage).order_by(col(StoredMessage.sent_at))
            if peer is not None:
                query = query.where(StoredMessage.peer == peer)
            return list(s.exec(query))

    def mark_read(self, peer: str) -> None:
        with self.session() as s:
            convo = s.get(Conversation, peer)
            if convo:
                convo.unread = 0
                s.add(convo)
                s.commit()

    # --- queries for interactive clients (the TUI) -------------------------------------------

    def conversation(self, peer: str) -> Conversation | None:
        with self.session() as s:
            return s.get(Conversation, peer)

    def messages_page(
        self, peer: str, before: tuple[int, str] | None = None, limit: int = 200
    ) -> list[StoredMessage]:
        """At most ``limit`` messages of ``peer`` older than ``before`` (sent_at, msg_id), oldest
        first; a long conversation opens from its newest page without loading the rest."""
        with self.session() as s:
            query = select(StoredMessage).where(StoredMessage.peer == peer)
            if before is not None:
                at, msg_id = before
                query = query.where(
                    (col(StoredMessage.sent_at) < at)
                    | ((col(StoredMessage.sent_at) == at) & (col(StoredMessage.msg_id) < msg_id))
                )
            query = query.order_by(
                col(StoredMessage.sent_at).desc(), col(StoredMessage.msg_id).desc()
            ).limit(limit)
            return list(reversed(list(s.exec(query))))

    def last_incoming(self, peer: str, limit: int = 5) -> list[StoredMessage]:
        """The newest ``limit`` messages received from ``peer``, oldest first (for reports)."""
        with self.session() as s:
            query = (
                select(StoredMessage)
                .where(StoredMessage.peer == peer, StoredMessage.direction == "in")
                .order_by(col(StoredMessage.sent_at).desc(), col(StoredMessage.msg_id).desc())
                .limit(limit)
            )
            return list(reversed(list(s.exec(query))))

    def has_outgoing(self, peer: str) -> bool:
        """Whether this device ever wrote to ``peer`` (first-contact prompts depend on it)."""
        with self.session() as s:
            query = select(StoredMessage.msg_id).where(
                StoredMessage.peer == peer, StoredMessage.direction == "out"
            )
            return s.exec(query.limit(1)).first() is not None

    def last_messages(self) -> dict[str, StoredMessage]:
        """The newest message of every conversation, in one query (for chat lists)."""
        latest = (
            select(StoredMessage.peer, func.max(StoredMessage.sent_at).label("at"))
            .group_by(StoredMessage.peer)
            .subquery()
        )
        query = select(StoredMessage).join(
            latest,
            (col(StoredMessage.peer) == latest.c.peer)
            & (col(StoredMessage.sent_at) == latest.c.at),
        )
        found: dict[str, StoredMessage] = {}
        with self.session() as s:
            for message in s.exec(query):
                held = found.get(message.peer)
                if held is None or message.msg_id > held.msg_id:  # same ms: as messages_page
                    found[message.peer] = message
        return found

    def messages_after(
        self, peer: str, after: tuple[int, str], limit: int = 200, *, inclusive: bool = False
    ) -> list[StoredMessage]:
        """At most ``limit`` messages of ``peer`` newer than ``after`` (sent_at, msg_id), oldest
        first (``inclusive``: that message too); lets a view open in the middle of a chat."""
        at, msg_id = after
        same = (
            col(StoredMessage.msg_id) >= msg_id if inclusive else col(StoredMessage.msg_id) > msg_id
        )
        with self.session() as s:
            query = (
                select(StoredMessage)
                .where(StoredMessage.peer == peer)
                .where(
                    (col(StoredMessage.sent_at) > at) | ((col(StoredMessage.sent_at) == at) & same)
                )
                .order_by(col(StoredMessage.sent_at), col(StoredMessage.msg_id))
                .limit(limit)
            )
            return list(s.exec(query))

    def message(self, msg_id: str) -> StoredMessage | None:
        with self.session() as s:
            return s.get(StoredMessage, msg_id)

    def search(self, query: str, limit: int = 200) -> list[StoredMessage]:
        """Messages whose text contains ``query`` (case-insensitive), newest first.

        Search is local by necessity: the relay only ever holds sealed blobs.
        """
        needle = query.strip()
        if not needle:
            return []
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.session() as s:
            found = (
                select(StoredMessage)
                .where(col(StoredMessage.text).ilike(f"%{escaped}%", escape="\\"))
                .order_by(col(StoredMessage.sent_at).desc(), col(StoredMessage.msg_id).desc())
                .limit(limit)
            )
            return list(s.exec(found))

    def unread_total(self) -> int:
        """Unread messages in accepted conversations (message requests are counted apart)."""
        with self.session() as s:
            total = select(func.coalesce(func.sum(Conversation.unread), 0)).where(
                col(Conversation.accepted)
            )
            return int(s.exec(total).one())

    def requests(self) -> list[Conversation]:
        """Message requests, newest first."""
        with self.session() as s:
            return list(
                s.exec(
                    select(Conversation)
                    .where(~col(Conversation.accepted))
                    .order_by(col(Conversation.last_at).desc())
                )
            )

    def set_accepted(self, peer: str, accepted: bool = True) -> None:
        """Mark ``peer``'s conversation accepted (or a request again). Accepting someone who
        has not written yet keeps an empty conversation, so their first message is no request.
        """
        with self.session() as s:
            convo = s.get(Conversation, peer)
            if convo is None:
                if not accepted:
                    return
                convo = Conversation(peer=peer, display_name=peer)
            elif convo.accepted == accepted:
                return
            convo.accepted = accepted
            s.add(convo)
            s.commit()
