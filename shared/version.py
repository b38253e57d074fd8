"""Protocol version and the fixed limits every party agrees on."""

from typing import Final

PROTOCOL_VERSION: Final = 1

# Sealed ciphertexts are padded so that their length is a power of two in this range, which
# leaves the relay only ~9 distinguishable sizes instead of a byte-exact length.
MIN_CIPHERTEXT_BYTES = 256
MAX_CIPHERTEXT_BYTES = 64 * 1024
SEAL_OVERHEAD_BYTES = 48  # X25519 ephemeral public key (32) + Poly1305 tag (16)

MAX_BATCH_ENVELOPES = 1000
# Integers on the wire fit a signed 64-bit column (times in ms, cursors, amounts).
MAX_INT64 = 2**63 - 1
MAX_CHAT_TEXT_CHARS = 16_000
