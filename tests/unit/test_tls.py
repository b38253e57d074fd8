"""One TLS context per channel and process: a thousand simulated devices must not build a
thousand, and the anonymous channel never shares the account channel's."""

import ssl

from client import tls
from client.relay_api import RelayAPI
from shared.keys import AccountKeys


def _context_of(api: RelayAPI) -> ssl.SSLContext:
    return api._http._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_every_relay_client_reuses_the_account_channels_context():
    keys = AccountKeys.generate()
    first = RelayAPI("https://relay.example", "ana", keys)
    second = RelayAPI("https://relay.example", "bob", keys)
    assert _context_of(first) is _context_of(second) is tls.account_channel()
    assert tls.anonymous_channel() is tls.anonymous_channel()
    assert tls.anonymous_channel() is not tls.account_channel()
    assert tls.account_channel().verify_mode == ssl.CERT_REQUIRED


def test_the_shuffler_builds_its_context_for_the_relay_once():
    from shuffler import tls as shuffler_tls

    assert shuffler_tls.relay_channel() is shuffler_tls.relay_channel()
    assert shuffler_tls.relay_channel().verify_mode == ssl.CERT_REQUIRED
