"""Sealing a campaign's copies on every core.

PyNaCl holds the GIL, so threads do not add cores; large campaigns are sealed in worker
processes instead. Each worker gets the business key and template once and returns envelopes
as JSON text, ready to be joined into a batch body without re-validating them.
"""

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from nacl.public import PublicKey

from client.business.audience import AudienceRow
from client.worker_pools import process_pool
from shared.api import TemplateInfo
from shared.encoding import b64encode
from shared.envelope import TemplateContent, TemplatePayload
from shared.identifiers import new_message_id
from shared.keys import AccountKeys
from shared.seal import seal
from shared.version import PROTOCOL_VERSION

# Below this many copies a process pool costs more to start than it saves.
PROCESS_POOL_MIN_COPIES = 2000

_worker: dict[str, Any] = {}


def seal_copy(
    keys: AccountKeys,
    business: str,
    template: TemplateInfo,
    row: AudienceRow,
    box_key: PublicKey,
    campaign_id: str,
    sent_at: int,
) -> str:
    """One personalised, signed and sealed copy, as its envelope's JSON; its variables exist
    only inside the seal."""
    payload = TemplatePayload(
        id=new_message_id(),
        sender=business,
        recipient=row.handle,
        sent_at=sent_at,
        content=TemplateContent(
            template_id=template.id,
            template_hash=template.hash,
            variables=row.variables,
            campaign_id=campaign_id,
        ),
    )
    # Written straight from parts already checked (the payload above, the registry's
    # template, our own sealed box): building and validating an Envelope model first (which
    # base64-decodes the box to check its size) cost a fifth of a copy's sealing time. The
    # relay validates every envelope it receives.
    return json.dumps(
        {
            "v": PROTOCOL_VERSION,
            "id": payload.id,
            "sender": business,
            "recipient": row.handle,
            "kind": "template",
            "category": template.category,
            "template_id": template.id,
            "campaign_id": campaign_id,
            "ciphertext": b64encode(seal(payload, keys, box_key)),
        },
        separators=(",", ":"),
    )


def _state(
    keys: dict[str, str], business: str, template_json: str, campaign_id: str, sent_at: int
) -> dict[str, Any]:
    return {
        "keys": AccountKeys.from_json(keys),
        "business": business,
        "template": TemplateInfo.model_validate_json(template_json),
        "campaign_id": campaign_id,
        "sent_at": sent_at,
    }


# Sealing is background work that can take every core for a while: its processes yield to
# everything else on the machine (the console, its network I/O, a relay on the same host).
WORKER_NICENESS = 10


def _init_worker(*init: Any) -> None:
    """Runs once in each worker process: the campaign's fixed inputs become its globals."""
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICENESS)
    _worker.update(_state(*init))


def _seal_rows(
    rows: Sequence[tuple[AudienceRow, bytes]], state: dict[str, Any] | None = None
) -> list[str]:
    w = state or _worker  # in-process callers pass their own; worker processes use theirs
    return [
        seal_copy(
            w["keys"],
            w["business"],
            w["template"],
            row,
            PublicKey(box),
            w["campaign_id"],
            w["sent_at"],
        )
        for row, box in rows
    ]


class Sealer:
    """Seals batches of rows into envelope JSON, on ``workers`` processes when worth it."""

    def __init__(
        self,
        keys: AccountKeys,
        business: str,
        template: TemplateInfo,
        campaign_id: str,
        box_keys: dict[str, PublicKey],
        *,
        copies: int,
        workers: int = 2,
    ) -> None:
        self.box_keys = box_keys
        self.workers = max(1, workers)
        init = (
            keys.to_json(),
            business,
            template.model_dump_json(),
            campaign_id,
            int(time.time() * 1000),
        )
        self._pool: Executor
        self._state: dict[str, Any] | None = None
        if self.workers > 1 and copies >= PROCESS_POOL_MIN_COPIES:
            self._pool = process_pool(self.workers, _init_worker, init)
        else:
            self.workers = 1
            self._state = _state(*init)  # several campaigns may seal at once in one process
            self._pool = ThreadPoolExecutor(1)

    async def seal(self, rows: Sequence[AudienceRow]) -> list[str]:
        loop = asyncio.get_running_loop()
        pairs = [(row, bytes(self.box_keys[row.handle])) for row in rows]
        size = max(1, -(-len(pairs) // self.workers))
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, _seal_rows, pairs[i : i + size], self._state)
                for i in range(0, len(pairs), size)
            )
        )
        return [envelope for part in parts for envelope in part]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
