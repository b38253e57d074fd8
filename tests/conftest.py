"""Fixtures shared by every test: real relays on loopback (SQLite and, when reachable, PostgreSQL)
and real client profiles talking to them."""

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from client.messenger import Messenger
from server import schema
from server.clock import ManualClock
from server.db import make_engine
from server.embedded import EmbeddedRelay
from server.settings import RelaySettings

PG_ADMIN_URL = os.environ.get("SEALPOST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin():  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError:
        return None
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError:
        return None


@pytest.fixture(scope="session")
def pg_available() -> bool:
    conn = _pg_admin()
    if conn is None:
        return False
    conn.close()
    return True


def _new_pg_database() -> str:
    conn = _pg_admin()
    assert conn is not None
    name = f"sealpost_test_{secrets.token_hex(6)}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(url: str) -> None:
    conn = _pg_admin()
    if conn is None:
        return
    name = url.rsplit("/", 1)[1]
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, pg_available: bool) -> Iterator[str]:
    """A fresh, empty relay database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relay.db'}"
        return
    if not pg_available:
        if os.environ.get("SEALPOST_REQUIRE_PG"):
            pytest.fail(f"SEALPOST_REQUIRE_PG is set but no PostgreSQL answers at {PG_ADMIN_URL}")
        pytest.skip(f"no PostgreSQL answers at {PG_ADMIN_URL}")
    url = _new_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(url)


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, for tests of several relay processes."""
    if not pg_available:
        if os.environ.get("SEALPOST_REQUIRE_PG"):
            pytest.fail(f"SEALPOST_REQUIRE_PG is set but no PostgreSQL answers at {PG_ADMIN_URL}")
        pytest.skip(f"no PostgreSQL answers at {PG_ADMIN_URL}")
    url = _new_pg_database()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        _drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'relay.db'}"


def relay_settings(db: str, **overrides: object) -> RelaySettings:
    # Suites register many accounts from loopback; the registration limit has its own test.
    overrides.setdefault("registrations_per_hour", 0)
    # And make every unsigned request from there too; the per-address limit has its own test.
    overrides.setdefault("anonymous_per_s", 0)
    overrides.setdefault("max_requests_in_flight_per_address", 0)
    # Most suites have strangers write to each other freely; message requests have their own
    # tests (tests/functional/test_message_requests.py), with the shipped limits.
    overrides.setdefault("request_hold", 1_000_000)
    overrides.setdefault("requests_per_day", 1_000_000)
    # A sync of the disk per commit (1.5 ms here) is a property of the disk, not of what the
    # relay does: tests run without it; relays started as processes (test_metrics.py, the
    # benchmarks) keep the durable default.
    overrides.setdefault("durable_commits", False)
    return RelaySettings(db=db, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def relay(db_url: str) -> Iterator[EmbeddedRelay]:
    """A real relay over HTTP on a loopback port, on each backend."""
    with EmbeddedRelay(relay_settings(db_url)) as running:
        yield running


@pytest.fixture
def clock() -> ManualClock:
    """A business clock that moves only when the test says (scheduling, figures, caps)."""
    return ManualClock()


@pytest.fixture
def clocked_relay(sqlite_url: str, clock: ManualClock) -> Iterator[EmbeddedRelay]:
    """A relay on SQLite whose clock the test moves, e.g. past a campaign's figures_at."""
    with EmbeddedRelay(relay_settings(sqlite_url), clock=clock) as running:
        yield running


@pytest.fixture
def sqlite_relay(sqlite_url: str) -> Iterator[EmbeddedRelay]:
    """A real relay on SQLite only, for tests whose subject is not the storage backend."""
    with EmbeddedRelay(relay_settings(sqlite_url)) as running:
        yield running


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


PersonFactory = Callable[..., Awaitable[Messenger]]


@pytest.fixture
async def make_account(home: Path) -> AsyncIterator[PersonFactory]:
    """``await make_account("alice", relay)`` registers a profile and opens its client core."""
    opened: list[Messenger] = []

    async def make(handle: str, relay: EmbeddedRelay, **kwargs: object) -> Messenger:
        kwargs.setdefault("country", None if kwargs.get("business") else "+39")
        messenger = await Messenger.create_account(
            home,
            handle,
            handle,
            relay.url,
            **kwargs,  # type: ignore[arg-type]
        )
        opened.append(messenger)
        return messenger

    yield make
    for messenger in opened:
        await messenger.aclose()
