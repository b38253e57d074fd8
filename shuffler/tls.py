"""The TLS context the shuffler talks to the relay with, built once per process.

Building one loads the whole CA bundle (about 20 ms), and httpx builds a new one for every
client unless given one: the shuffler makes a client for each batch it forwards and each
time it fetches the relay's key log.
"""

import ssl
from functools import cache

import httpx


@cache
def relay_channel() -> ssl.SSLContext:
    """The context for requests to the relay (honours SSL_CERT_FILE / SSL_CERT_DIR)."""
    return httpx.create_ssl_context()
