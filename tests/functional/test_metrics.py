"""What an operator watches: GET /metrics and the JSON request log, against `sealpost relay`
in its own process. Counts by route template, totals from the database, and nothing that
names a person."""

import asyncio
import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from client.messenger import Messenger
from sealpost.relay_process import RelayProcess


def _samples(url: str) -> tuple[dict[tuple[str, tuple[tuple[str, str], ...]], float], str]:
    answer = httpx.get(url + "/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found, answer.text


async def test_metrics_count_by_template_and_name_nobody(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = tmp_path / "relay.log"
    db = f"sqlite:///{tmp_path}/relay.db"
    with RelayProcess(db, log, request_log="true", auto_migrate="true") as relay:
        alice = await Messenger.create_account(home, "alice", "alice", relay.url, country="+39")
        bob = await Messenger.create_account(home, "bob", "bob", relay.url, country="+39")
        await bob.accept_request("alice")
        for n in range(3):
            await alice.send_text("bob", f"hello {n}")
        assert len((await bob.sync()).stored) == 3
        async with httpx.AsyncClient(timeout=10) as http:
            await http.get(relay.url + "/no/such/path/for/bob")
        await alice.aclose()
        await bob.aclose()
        samples, text = await asyncio.to_thread(_samples, relay.url)
    sends = ("route", "/v1/messages"), ("method", "POST"), ("status", "202")
    assert samples[("sealpost_requests_total", tuple(sorted(sends)))] == 3
    acks = ("route", "/v1/mailboxes/{handle}/ack"), ("method", "POST"), ("status", "200")
    assert samples[("sealpost_requests_total", tuple(sorted(acks)))] >= 1  # the hot path too
    unknown = ("route", "other"), ("method", "GET"), ("status", "404")
    assert samples[("sealpost_requests_total", tuple(sorted(unknown)))] == 1
    acked = ("kind", "chat"), ("state", "acked")
    assert samples[("sealpost_envelopes", tuple(sorted(acked)))] == 3
    assert samples[("sealpost_open_streams", ())] == 0
    # Totals and templates only: no handle, no id, nothing a person could be found by.
    for name in ("alice", "bob", "hello"):
        assert name not in text
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert {"method": "POST", "route": "/v1/messages", "status": 202} in [
        {k: entry[k] for k in ("method", "route", "status")} for entry in lines
    ]
    assert all(set(entry) == {"at", "method", "route", "status", "ms"} for entry in lines)
    assert "bob" not in "".join(json.dumps(entry) for entry in lines)
