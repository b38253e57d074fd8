"""A relay and a shuffler side by side on loopback, for the demo and tests: the relay trusts
the shuffler's key, the shuffler forwards to the relay, devices are pointed at the shuffler."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.clock import Clock
from server.embedded import EmbeddedRelay
from server.settings import RelaySettings
from shared.shuffled import public_key_b64
from shuffler.embedded import EmbeddedShuffler
from shuffler.keys import load_or_create
from shuffler.settings import ShufflerSettings

SHUFFLER_ENV = "SEALPOST_SHUFFLER_URL"


@contextmanager
def relay_with_shuffler(
    workdir: Path,
    relay_settings: RelaySettings,
    clock: Clock | None = None,
    **shuffler_options: Any,
) -> Iterator[tuple[EmbeddedRelay, EmbeddedShuffler]]:
    """Start both (the shuffler's key, database and settings in ``workdir``); while inside,
    clients made in this process send their reports to the shuffler (SEALPOST_SHUFFLER_URL)."""
    key_path = workdir / "shuffler.key"
    trusted = relay_settings.model_copy(
        update={"shuffler_keys": [public_key_b64(load_or_create(key_path))]}
    )
    with EmbeddedRelay(trusted, clock=clock) as relay:
        settings = ShufflerSettings(
            db=workdir / "shuffler.db", relay=relay.url, key_path=key_path, **shuffler_options
        )
        with EmbeddedShuffler(settings) as shuffler:
            relay.app.state.settings.shuffler_url = shuffler.url  # named when refusing direct
            before = os.environ.get(SHUFFLER_ENV)
            os.environ[SHUFFLER_ENV] = shuffler.url
            try:
                yield relay, shuffler
            finally:
                if before is None:
                    os.environ.pop(SHUFFLER_ENV, None)
                else:
                    os.environ[SHUFFLER_ENV] = before
