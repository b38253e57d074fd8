"""Opening received envelopes, on every core when there are many (a client catching up).

Opening is mostly libsodium, which runs without the GIL; but the Python around each call
needs it, and opening threads then queue behind the event loop's thread for it (each waits up
to the interpreter's 5 ms switch interval), so on a busy client they add little. Worker
processes (forked, so they start in milliseconds) do not share a GIL. Each gets the account's
keys once; a job carries envelopes' routing fields and ciphertexts with their senders' pinned
public keys, and comes back as plain tuples: the verified payload as JSON, or why the envelope
must be quarantined.
"""

import asyncio
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from client.worker_pools import process_pool
from shared.envelope import Envelope
from shared.keys import AccountKeys, PublicKeys
from shared.seal import VerificationError, open_envelope

# index, id, sender, recipient, kind, ciphertext (base64): what opening needs of an envelope
Job = tuple[int, str, str, str, str, str]
# ("ok", payload JSON, sent_at, chat text or None for a template), or
# ("refused", reason, detail, None): what the client stores, verified or quarantined.
Outcome = tuple[str, str, Any, Any]
SenderKeys = dict[str, tuple[str, str]]  # handle -> (sign key, box key), base64

_worker: dict[str, Any] = {}
_FIELDS = set(Envelope.model_fields)


def _init_worker(keys: dict[str, str]) -> None:
    """Runs once in each worker process: the account's keys become its globals."""
    _worker["me"] = AccountKeys.from_json(keys)
    _worker["senders"] = {}


def open_jobs(
    jobs: Sequence[Job], sender_keys: SenderKeys, me: AccountKeys | None = None
) -> list[tuple[int, Outcome]]:
    """Open and verify each envelope of ``jobs`` with its sender's keys.

    In-process callers pass ``me``; worker processes use the keys they were started with.
    """
    me = me or _worker["me"]
    cache: dict[tuple[str, str], PublicKeys] = _worker.get("senders", {})
    out: list[tuple[int, Outcome]] = []
    for index, msg_id, sender, recipient, kind, ciphertext in jobs:
        pinned = sender_keys[sender]
        keys = cache.get(pinned)
        if keys is None:
            keys = cache[pinned] = PublicKeys.from_b64(*pinned)
        # Validated when the page was parsed. Only the fields that opening reads are needed
        # (the category, template and campaign are checked by the client after opening).
        envelope = Envelope.model_construct(
            _fields_set=_FIELDS,
            v=1,
            id=msg_id,
            sender=sender,
            recipient=recipient,
            kind=kind,
            category="service",
            template_id=None,
            campaign_id=None,
            not_before=None,
            expires_at=None,
            ciphertext=ciphertext,
        )
        try:
            payload = open_envelope(envelope, me, keys)
        except VerificationError as exc:
            out.append((index, ("refused", exc.reason, exc.detail, None)))
            continue
        text = payload.content.text if payload.kind == "chat" else None  # type: ignore[union-attr]
        out.append((index, ("ok", payload.model_dump_json(), payload.sent_at, text)))
    return out


class Opener:
    """Opens jobs here, or in worker processes started on first need and kept until close."""

    def __init__(self, keys: AccountKeys, workers: int) -> None:
        self.keys = keys
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def here(self, jobs: Sequence[Job], sender_keys: SenderKeys) -> list[tuple[int, Outcome]]:
        return open_jobs(jobs, sender_keys, self.keys)

    def elsewhere(
        self, jobs: Sequence[Job], sender_keys: SenderKeys
    ) -> "asyncio.Future[list[tuple[int, Outcome]]]":
        """Start opening ``jobs`` in a worker process; the future has the outcomes."""
        if self._pool is None:
            self._pool = process_pool(self.workers, _init_worker, (self.keys.to_json(),))
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._pool, open_jobs, jobs, sender_keys)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
