"""The ristretto255 group (RFC 9496), as libsodium implements it, for the token VOPRF.

PyNaCl exposes no ristretto255 functions, so the group comes from ``rbcl``: a wheel that
bundles libsodium and wraps its ``crypto_core_ristretto255_*`` and
``crypto_scalarmult_ristretto255*`` functions. Every operation here is libsodium's
constant-time C; elements are always their canonical 32-byte encodings.

Functions:

- ``decode(data) -> bytes``: ``data`` if it is a canonical, valid, non-identity element, else
  ``ValueError`` (RFC 9497 DeserializeElement).
- ``add(a, b)``, ``mul(scalar, element)``, ``mul_base(scalar)``: group operations; a zero
  scalar or a product that is the identity gives ``IDENTITY``.
- ``from_uniform(64 bytes) -> element``: RFC 9496's one-way map (hash_to_ristretto255's
  last step).
"""

import contextlib
import os
import tempfile

import rbcl
from rbcl import rbcl as _rbcl_module

ELEMENT_BYTES = 32
IDENTITY = bytes(ELEMENT_BYTES)


def _forget_rbcls_temporary_library() -> None:
    """rbcl writes its bundled libsodium to a new temporary file on every import and never
    removes it (2.8 MB a process). The library stays mapped once loaded, so the file can go;
    only a file in the temporary directory is touched."""
    path = getattr(getattr(_rbcl_module, "_sodium", None), "_name", None)
    if not isinstance(path, str):
        return
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(tempfile.gettempdir()):
        return
    with contextlib.suppress(OSError):  # Windows keeps a loaded library's file locked
        os.unlink(path)


_forget_rbcls_temporary_library()


def decode(data: bytes) -> bytes:
    """``data`` if it is a valid, canonical, non-identity element; else ``ValueError``."""
    if len(data) != ELEMENT_BYTES:
        raise ValueError(f"an element is {ELEMENT_BYTES} bytes, not {len(data)}")
    if data == IDENTITY:
        raise ValueError("the identity element is not allowed")
    if not rbcl.crypto_core_ristretto255_is_valid_point(data):
        raise ValueError("not a canonical ristretto255 encoding")
    return data


def add(a: bytes, b: bytes) -> bytes:
    """``a + b``."""
    return rbcl.crypto_core_ristretto255_add(a, b)


def mul(scalar: bytes, element: bytes) -> bytes:
    """``scalar * element``; the scalar must be reduced (below the group order)."""
    return rbcl.crypto_scalarmult_ristretto255_allow_scalar_zero(scalar, element)


def mul_base(scalar: bytes) -> bytes:
    """``scalar * G`` for the group's generator G."""
    return rbcl.crypto_scalarmult_ristretto255_base_allow_scalar_zero(scalar)


def from_uniform(uniform: bytes) -> bytes:
    """RFC 9496 one-way map from 64 uniformly random bytes to an element."""
    return rbcl.crypto_core_ristretto255_from_hash(uniform)
