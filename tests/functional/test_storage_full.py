"""A relay whose storage is full says so by name and stays honest about it: 507
``storage_full`` with what to do (not a bare 500), ``/readyz`` answers 503 while writes fail
and 200 again once they succeed, ``/healthz`` (alive) stays 200, and nothing half-stored is
left behind. The full disk is injected as the SQLITE_FULL error SQLite raises when its disk
is full, where the relay hands statements to the driver."""

import re
import sqlite3

import httpx
import pytest
from sqlalchemy import event

from client.relay_api import RelayError
from server import mailbox
from server.embedded import EmbeddedRelay
from tests.conftest import relay_settings
from tests.helpers import chat_envelopes


class FullDisk:
    """The relay's database refuses every write, as SQLite does when its disk is full
    (SQLITE_FULL, "database or disk is full"); reads still work. Injected where the relay
    hands statements to the driver."""

    def __init__(self, relay: EmbeddedRelay, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        event.listen(relay.app.state.engine, "before_cursor_execute", self._refuse)
        # Mail is inserted with the driver's own executemany, past SQLAlchemy's events.
        insert_rows = mailbox._insert_rows

        def refusing(session, rows):  # type: ignore[no-untyped-def]
            if self.full:
                raise sqlite3.OperationalError("database or disk is full")
            return insert_rows(session, rows)

        monkeypatch.setattr(mailbox, "_insert_rows", refusing)

    def _refuse(self, _conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if self.full and statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError("database or disk is full")


async def test_a_full_disk_is_named_and_readiness_tells_the_truth(
    sqlite_url, make_account, monkeypatch
):
    with EmbeddedRelay(relay_settings(sqlite_url)) as relay:
        alice = await make_account("alice", relay)
        bob = await make_account("bob", relay)
        await bob.accept_request("alice")
        await alice.send_text("bob", "before")
        http = httpx.AsyncClient(base_url=relay.url, timeout=10)
        assert (await http.get("/readyz")).status_code == 200

        disk = FullDisk(relay, monkeypatch)
        disk.full = True
        [envelope] = chat_envelopes(alice, bob.profile.keys, "bob", 1, text="x" * 15_000)
        with pytest.raises(RelayError) as err:
            await alice.api.request("POST", "/v1/messages", envelope.encode())
        assert err.value.status == 507 and err.value.code == "storage_full"
        assert "storage is full" in err.value.message and "again" in err.value.message
        # The app keeps what the relay could not store, and sends it once it can.
        queued = await alice.send_text("bob", "y" * 15_000)
        assert queued.status == "queued"
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "storage_full"
        assert (await http.get("/healthz")).status_code == 200  # alive, just not ready
        metrics = (await http.get("/metrics")).text
        [count] = re.findall(r"^sealpost_storage_errors_total (\S+)$", metrics, re.M)
        assert float(count) >= 1  # the refused writes, counted for the operator

        disk.full = False  # the operator freed space
        assert (await http.get("/readyz")).status_code == 200
        assert (await alice.flush_outbox()).sent == [queued.msg_id]
        texts = [m.text for m in (await bob.sync()).stored]
        assert texts == ["before", "y" * 15_000]  # and nothing half-stored of the refused one
        await http.aclose()


async def test_with_the_disk_full_mail_can_still_be_read_and_nonces_still_hold(
    sqlite_url, make_account, monkeypatch
):
    """Every signed request writes its nonce; with the disk full that write fails, and no
    one could even read their mailbox. The relay keeps those nonces in memory for their
    window instead: reads go on, and a replay is refused, during the outage and after it."""
    with EmbeddedRelay(relay_settings(sqlite_url)) as relay:
        alice = await make_account("alice", relay)
        bob = await make_account("bob", relay)
        await bob.accept_request("alice")
        await alice.send_text("bob", "waiting for you")
        disk = FullDisk(relay, monkeypatch)
        disk.full = True

        path = "/v1/mailboxes/bob"
        headers = bob.api._signed("GET", path, b"")
        http = httpx.AsyncClient(base_url=relay.url, timeout=10)
        first = await http.get(path, headers=headers)
        assert first.status_code == 200, first.text
        assert len(first.json()["items"]) == 1
        again = await http.get(path, headers=headers)  # the same signed request, replayed
        assert again.status_code == 401 and again.json()["error"]["code"] == "replayed_request"
        # Writes are still refused, by name.
        with pytest.raises(RelayError) as err:
            await alice.api.request("PUT", "/v1/prefs/level", b'{"level":"all"}')
        assert err.value.code == "storage_full"

        disk.full = False  # space again: a replay of what was read during the outage fails
        replay = await http.get(path, headers=headers)
        assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed_request"
        assert [m.text for m in (await bob.sync()).stored] == ["waiting for you"]
        await http.aclose()
