"""Fixtures of the gateway's tests (test_gateway.py, test_gateway_attacks.py): a business
with money, a webhook endpoint that keeps what it is posted, and a gateway serving them."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from client.messenger import Messenger
from server.embedded import EmbeddedRelay
from tests.helpers import Running, Served, WebhookInbox, prepare_gateway


@pytest.fixture
async def shop(sqlite_relay: EmbeddedRelay, make_account: Any) -> Messenger:
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    await shop.api.top_up(50_000_000)
    return shop


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[WebhookInbox, str]]:
    inbox = WebhookInbox()
    served = Served(inbox.app())
    yield inbox, served.url + "/hook"
    await served.stop()


@pytest.fixture
async def gateway(
    sqlite_relay: EmbeddedRelay, shop: Messenger, inbox: tuple[WebhookInbox, str]
) -> AsyncIterator[Running]:
    running = prepare_gateway(shop, sqlite_relay, inbox[1])
    await running.server.start()
    yield running
    await running.server.stop()
