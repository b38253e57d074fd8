"""TLS contexts for talking to the relay, built once per process.

Building one loads the whole CA bundle (about 20 ms), and httpx builds a new one for every
client unless given one; a tester's process may hold a thousand simulated devices, each with
a client per channel. The anonymous signal channel gets a context of its own, so that nothing
TLS may keep between connections is ever shared with the account's channel.
"""

import ssl
from functools import cache

import httpx


@cache
def account_channel() -> ssl.SSLContext:
    """The context for signed requests and streams (honours SSL_CERT_FILE / SSL_CERT_DIR)."""
    return httpx.create_ssl_context()


@cache
def anonymous_channel() -> ssl.SSLContext:
    """The context for the anonymous signal channel, never shared with the account's."""
    return httpx.create_ssl_context()
