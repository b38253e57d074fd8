"""The Sealpost protocol: schemas, crypto and versioning shared by client and relay.

This package imports neither ``client`` nor ``server``; the HTTP protocol is their only contract.
"""

from shared.version import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
