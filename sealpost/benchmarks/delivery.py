"""Delivery: many connected clients receiving pushed messages, against a storage floor.

Persons are written straight into the relay's database; each holds one delivery stream open
(spread over the relay processes) and acks what it received as the real client does (in
batches, within the client's default ack delay). The clients are lean load generators
(benchmarks/wire.py), so that the relay, not httpx, is what is measured. A sender submits
chat envelopes in batches of 1,000 to people who accepted it (contacts, not message
requests; the relay's limits on strangers stay at their defaults). Measured:

- throughput: all messages submitted as fast as the relay takes them, until every one has
  been received by its person (messages per second). At the target rate this burst ends
  before any client's first ack is due (ACK_DELAY_S after its first message, as the real
  client does), so it measures delivery alone;
- sustained throughput: batches as fast as the relay takes them for SUSTAINED_ACK_ROUNDS ack
  delays, the clients' acks included (messages received within that time, per second);
- latency: at half that rate, from submission to arrival on the stream (p50, p99);
- floor: the same rows inserted straight into the same kind of database, with no HTTP, no
  checks and no delivery (rows per second). The ratio says what the relay costs on top.
"""

import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import insert

from client.messenger import ACK_BATCH
from client.settings import ClientSettings
from sealpost.benchmarks.seeding import seed_acceptances, seed_persons
from sealpost.benchmarks.wire import Connection
from sealpost.relay_process import RelayProcess
from server.db import make_engine
from server.models import MailboxEntry
from shared.auth import sign_request
from shared.encoding import b64encode
from shared.keys import AccountKeys
from shared.version import MAX_BATCH_ENVELOPES

PG_ADMIN = os.environ.get("SEALPOST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_RATE = 5_000
TARGET_P99_MS = 250
ACK_DELAY_S = ClientSettings.model_fields["ack_delay_s"].default  # as the real client
SUSTAINED_ACK_ROUNDS = 4


def _seed(db_url: str, clients: int) -> tuple[list[tuple[str, AccountKeys]], AccountKeys]:
    people = seed_persons(db_url, clients, prefix="reader")
    [(sender_handle, sender)] = seed_persons(db_url, 1, prefix="benchsender")
    # Chat volume flows between contacts; a stranger gets a few messages through as a
    # message request (request_hold) and no more, so it is not what carries load.
    seed_acceptances(db_url, [handle for handle, _ in people], sender_handle)
    return people, sender


def _envelopes(people: list[tuple[str, AccountKeys]], count: int) -> list[tuple[str, str]]:
    """(message id, envelope JSON) pairs, round-robin over the people; the relay never opens
    a ciphertext, so random padded bytes stand in for sealed ones."""
    out = []
    for i in range(count):
        msg_id = secrets.token_hex(16)
        envelope = {
            "v": 1,
            "id": msg_id,
            "sender": "benchsender000000",
            "recipient": people[i % len(people)][0],
            "kind": "chat",
            "category": "service",
            "ciphertext": b64encode(secrets.token_bytes(256)),
        }
        out.append((msg_id, json.dumps(envelope, separators=(",", ":"))))
    return out


class _Receivers:
    """One SSE stream per person (lean wire client, see wire.py); records arrival times."""

    def __init__(
        self, people: list[tuple[str, AccountKeys]], urls: list[str], ack_delay_s: float
    ) -> None:
        self.people = people
        self.urls = urls
        self.ack_delay_s = ack_delay_s
        self.acked = 0
        self.ack_failures: list[str] = []
        self.arrived: dict[str, float] = {}
        self.connected = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.connections: list[Connection] = []

    async def start(self) -> None:
        for i, person in enumerate(self.people):
            self.tasks.append(asyncio.create_task(self._run(person, self.urls[i % len(self.urls)])))
        for _ in range(600):
            if self.connected == len(self.people):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"only {self.connected} of {len(self.people)} streams connected")

    async def _run(self, person: tuple[str, AccountKeys], url: str) -> None:
        handle, keys = person
        host, port = url.removeprefix("http://").rsplit(":", 1)
        connection = Connection(host, int(port), handle, keys)
        self.connections.append(connection)
        # Acks as Messenger._stream_once sends them: ACK_DELAY_S after the first unacked
        # envelope (again while more keep coming), or at once when ACK_BATCH are waiting.
        to_ack: list[str] = []
        acker: asyncio.Task[None] | None = None
        try:
            async for event in connection.events(f"/v1/mailboxes/{handle}/stream"):
                if b"event: envelope" in event:
                    # The message id, without parsing the whole frame's JSON.
                    start = event.index(b'"id":"', event.index(b'"envelope"')) + 6
                    msg_id = event[start : event.index(b'"', start)].decode()
                    self.arrived.setdefault(msg_id, time.perf_counter())
                    to_ack.append(msg_id)
                    if len(to_ack) >= ACK_BATCH:
                        await self._ack(connection, handle, to_ack)
                    elif acker is None or acker.done():
                        acker = asyncio.create_task(self._ack_later(connection, handle, to_ack))
                elif b"event: ready" in event:
                    self.connected += 1
        finally:
            if acker is not None:
                acker.cancel()

    async def _ack_later(self, connection: Connection, handle: str, ids: list[str]) -> None:
        while ids:
            await asyncio.sleep(self.ack_delay_s)
            await self._ack(connection, handle, ids)

    async def _ack(self, connection: Connection, handle: str, ids: list[str]) -> None:
        batch, ids[:] = ids[:MAX_BATCH_ENVELOPES], ids[MAX_BATCH_ENVELOPES:]
        if not batch:
            return
        path = f"/v1/mailboxes/{handle}/ack"
        status, answer = await connection.request("POST", path, json.dumps({"ids": batch}).encode())
        if status != 200:  # raised by _measure: a benchmark whose acks fail measures nothing
            self.ack_failures.append(f"ack answered {status}: {answer[:200]!r}")
        else:
            self.acked += len(json.loads(answer)["acked"])

    async def wait_for(self, ids: list[str], timeout_s: float) -> None:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if all(i in self.arrived for i in ids[-200:]) and all(i in self.arrived for i in ids):
                return
            await asyncio.sleep(0.02)
        missing = sum(i not in self.arrived for i in ids)
        raise RuntimeError(f"{missing} of {len(ids)} messages never arrived")

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for connection in self.connections:
            connection.close()


async def _submit(
    http: httpx.AsyncClient,
    url: str,
    sender: AccountKeys,
    batch: list[tuple[str, str]],
    sent: dict[str, float],
) -> None:
    path = "/v1/messages/batch"
    body = ('{"envelopes":[' + ",".join(e for _, e in batch) + "]}").encode()
    headers = sign_request(sender.signing, "benchsender000000", "POST", path, body)
    headers["Content-Type"] = "application/json"
    start = time.perf_counter()
    for msg_id, _ in batch:
        sent[msg_id] = start
    for attempt in range(3):
        try:
            response = await http.post(url + path, content=body, headers=headers)
            break
        except httpx.TransportError:
            # An overloaded relay may drop a kept-alive connection; the same bytes again are
            # recognised as duplicates, so resending is safe (as the real client does).
            if attempt == 2:
                raise
            headers = sign_request(sender.signing, "benchsender000000", "POST", path, body)
            headers["Content-Type"] = "application/json"
    answer = response.json() if response.status_code == 200 else {}
    if answer.get("accepted", 0) + answer.get("duplicate", 0) != len(batch):
        raise RuntimeError(f"batch refused: {response.status_code} {response.text[:200]}")


async def _measure(
    people: list[tuple[str, AccountKeys]],
    sender: AccountKeys,
    urls: list[str],
    messages: int,
    ack_delay_s: float,
) -> dict[str, Any]:
    receivers = _Receivers(people, urls, ack_delay_s)
    await receivers.start()
    sent: dict[str, float] = {}
    http = httpx.AsyncClient(timeout=60)
    try:
        burst = _envelopes(people, messages)
        start = time.perf_counter()
        for i in range(0, len(burst), 1000):
            await _submit(http, urls[(i // 1000) % len(urls)], sender, burst[i : i + 1000], sent)
        await receivers.wait_for([m for m, _ in burst], 120)
        elapsed = max(receivers.arrived[m] for m, _ in burst) - start
        rate = messages / elapsed

        # Let the burst's acks drain first (every client acks ACK_DELAY_S after its first
        # message, all at once here): latency is measured in the steady state.
        await asyncio.sleep(ack_delay_s + 2)

        # Sustained: batches as fast as the relay takes them for several ack rounds, so that
        # the clients' acks (one request per client every ACK_DELAY_S) share the relay too.
        # The burst above ends before the first of them is due.
        sustained_s = SUSTAINED_ACK_ROUNDS * ack_delay_s
        ready = _envelopes(people, int(rate * sustained_s) + 1000)  # more than will go
        flowing: list[str] = []
        start = time.perf_counter()
        while time.perf_counter() - start < sustained_s and len(flowing) < len(ready):
            batch = ready[len(flowing) : len(flowing) + 1000]
            await _submit(http, urls[len(flowing) // 1000 % len(urls)], sender, batch, sent)
            flowing += [m for m, _ in batch]
        await receivers.wait_for(flowing, 120)
        end = start + sustained_s
        sustained = sum(receivers.arrived[m] <= end for m in flowing) / sustained_s
        await asyncio.sleep(ack_delay_s + 2)
        # Every message so far was received, and by now acked as the real client would.
        acked = {"acked": receivers.acked, "received": len(burst) + len(flowing)}

        # Latency at half the burst rate, in batches of 100 on a steady clock.
        paced = _envelopes(people, max(1000, messages // 2))
        interval = 100 / (rate / 2)
        tick = time.perf_counter()
        for i in range(0, len(paced), 100):
            await _submit(http, urls[(i // 100) % len(urls)], sender, paced[i : i + 100], sent)
            tick += interval
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        await receivers.wait_for([m for m, _ in paced], 120)
        latencies = sorted((receivers.arrived[m] - sent[m]) * 1000 for m, _ in paced)
    finally:
        await http.aclose()
        await receivers.close()
    if receivers.ack_failures:
        raise RuntimeError(f"acks failed: {receivers.ack_failures[:3]}")
    return {
        **acked,
        "messages_per_s": round(rate),
        "sustained_messages_per_s": round(sustained),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "paced_rate": round(rate / 2),
    }


def _floor(
    db_url: str, people: list[tuple[str, AccountKeys]], messages: int, durable: bool
) -> float:
    """Rows per second for plain multi-row inserts of the same mailbox rows."""
    engine = make_engine(db_url, durable=durable)
    rows = [
        {
            "msg_id": secrets.token_hex(16),
            "sender": "benchsender000000",
            "recipient": people[i % len(people)][0],
            "kind": "chat",
            "category": "service",
            "digest": "0" * 64,
            "ciphertext": secrets.token_bytes(256),
            "received_at": 0,
            "state": "acked",
            "price": 0,
        }
        for i in range(messages)
    ]
    table = MailboxEntry.__table__  # type: ignore[attr-defined]
    start = time.perf_counter()
    with engine.begin() as conn:
        for i in range(0, len(rows), 1000):
            conn.execute(insert(table), rows[i : i + 1000])
    elapsed = time.perf_counter() - start
    engine.dispose()
    return messages / elapsed


def _new_pg_database() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=2) as conn:
            name = f"sealpost_bench_{secrets.token_hex(4)}"
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg(url: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def delivery(
    backend: str = "sqlite",
    processes: int = 1,
    clients: int = 1000,
    messages: int = 10_000,
    ack_delay_s: float = ACK_DELAY_S,
    durable: bool = True,
) -> dict[str, Any]:
    """One delivery measurement; ``ack_delay_s`` is the clients' (the real client's by
    default; a test shortens it, and with it every wait that follows from it). ``durable``
    (SQLite): every commit synced, the relay's default; false measures the trade-off
    (``SEALPOST_RELAY_DURABLE_COMMITS=false``)."""
    name = f"delivery_{backend}_{processes}p" + ("" if durable else "_not_durable")
    with tempfile.TemporaryDirectory(prefix="sealpost-bench-") as tmp:
        if backend == "sqlite":
            db_url, floor_url = f"sqlite:///{tmp}/relay.db", f"sqlite:///{tmp}/floor.db"
        else:
            db_url, floor_url = _new_pg_database(), _new_pg_database()
            if db_url is None or floor_url is None:
                return {"name": name, "skipped": f"no PostgreSQL at {PG_ADMIN}", "ok": True}
        try:
            people, sender = _seed(db_url, clients)
            _seed(floor_url, 1)
            relays = [
                RelayProcess(
                    db_url,
                    Path(tmp) / f"relay{i}.log",
                    rate_burst="1000000",
                    rate_per_s="1000000",
                    # One load generator stands for many senders: lift the per-sender limits.
                    chat_burst="1000000",
                    chat_rate_per_s="1000000",
                    registrations_per_hour="0",
                    anonymous_per_s="0",
                    max_requests_in_flight_per_address="0",
                    durable_commits=str(durable).lower(),
                )
                for i in range(processes)
            ]
            try:
                urls = [r.url for r in relays]
                result = asyncio.run(_measure(people, sender, urls, messages, ack_delay_s))
            except Exception as exc:
                logs = "".join(
                    (Path(tmp) / f"relay{i}.log").read_text()[-2000:] for i in range(processes)
                )
                raise RuntimeError(f"{name} failed: {exc!r}; relay log tail:\n{logs}") from exc
            finally:
                for relay in relays:
                    relay.stop()
            floor = _floor(floor_url, people, messages, durable)
        finally:
            if backend == "postgres":
                _drop_pg(db_url)
                _drop_pg(floor_url)
    ok = result["messages_per_s"] >= TARGET_RATE and result["p99_ms"] <= TARGET_P99_MS
    return {
        "name": name,
        "what": f"{messages} chat messages pushed to {clients} connected clients through "
        f"{processes} relay process(es) on {backend}"
        + (
            ""
            if backend != "sqlite"
            else ", every commit synced"
            if durable
            else ", commits "
            "synced by checkpoints only (durable_commits off: a power cut may lose the last)"
        ),
        "durable": durable if backend == "sqlite" else True,
        "floor": "plain multi-row inserts of the same rows, rows per second",
        "clients": clients,
        "messages": messages,
        "processes": processes,
        **result,
        "floor_rows_per_s": round(floor),
        "ratio_to_floor": round(result["messages_per_s"] / floor, 3),
        "target": f">= {TARGET_RATE} msg/s; p99 <= {TARGET_P99_MS} ms at half that rate",
        "ok": ok,
    }
