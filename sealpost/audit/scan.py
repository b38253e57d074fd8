"""Finding traces of planted canaries in bytes, in clear or encoded.

Every blob is searched as is, URL-decoded, with each base64 run decoded (standard and URL-safe
alphabets) and each hex run decoded; the raw bytes are also searched for the marker ``CANARY``
in base64 at each of the three alignments, in hex and percent-encoded. Text canaries all carry
the marker, so a truncated or altered one is still found; phone numbers by their shape.
"""

import base64
import binascii
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

MARKER = b"CANARY"
_TOKEN = re.compile(rb"CANARY-[A-Z]+-[0-9a-f]{10}")
_MARKER_ANY_CASE = re.compile(rb"canary", re.IGNORECASE)
_PHONE = re.compile(rb"\+39[ .-]?3\d\d[ .-]?\d{7}")
_B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{12,}={0,2}")
_HEX_RUN = re.compile(rb"(?:[0-9a-fA-F]{2}){6,}")


def _b64_forms(marker: bytes) -> list[bytes]:
    """The base64 text of ``marker`` at each alignment, cut to the characters it alone fixes."""
    forms = []
    for lead in range(3):
        encoded = base64.b64encode(b"\0" * lead + marker)
        first = -(-lead * 8 // 6)  # first character with no bit from the lead bytes
        last = (lead + len(marker)) * 8 // 6  # characters fully inside the marker
        forms.append(encoded[first:last])
    return forms


_ALL_MARKERS: list[tuple[str, bytes]] = [
    *((f"base64 (alignment {i})", f) for i, f in enumerate(_b64_forms(MARKER))),
    *((f"base64 (alignment {i})", f) for i, f in enumerate(_b64_forms(MARKER.lower()))),
    *(
        (f"url-safe base64 (alignment {i})", f.replace(b"+", b"-").replace(b"/", b"_"))
        for i, f in enumerate(_b64_forms(MARKER))
    ),
    ("hex", MARKER.hex().encode()),
    ("hex", MARKER.hex().upper().encode()),
    ("hex", MARKER.lower().hex().encode()),
    ("percent-encoded", b"".join(b"%%%02X" % c for c in MARKER)),
    ("percent-encoded", b"".join(b"%%%02x" % c for c in MARKER)),
]
# One entry per distinct byte string (the URL-safe forms equal the standard ones here).
_ENCODED_MARKERS = list({marker: (form, marker) for form, marker in _ALL_MARKERS}.values())


@dataclass(frozen=True)
class Hit:
    where: str
    form: str
    found: str  # the canary (or what of it was found), shortened


def _decode_b64(run: bytes) -> list[bytes]:
    run = run.rstrip(b"=")
    if len(run) % 4 == 1:  # a stray character: drop it rather than miss the rest
        run = run[:-1]
    padded = run + b"=" * (-len(run) % 4)
    # Without "-" or "_", the URL-safe reading is the standard one: decode once.
    url_safe = b"-" in run or b"_" in run
    out = []
    for alphabet in (None, b"-_") if url_safe else (None,):
        try:
            out.append(base64.b64decode(padded, altchars=alphabet))
        except (binascii.Error, ValueError):
            continue
    return out


def decoded_views(blob: bytes) -> list[tuple[str, bytes]]:
    """``blob`` as is and in every decoded form searched."""
    views = [("clear", blob)]
    if b"%" in blob:
        views.append(("percent-decoded", unquote_to_bytes(blob.replace(b"+", b" "))))
    b64 = [d for m in _B64_RUN.finditer(blob) for d in _decode_b64(m.group())]
    if b64:
        views.append(("base64-decoded", b"\n".join(b64)))
    hexed = [bytes.fromhex(m.group().decode()) for m in _HEX_RUN.finditer(blob)]
    if hexed:
        views.append(("hex-decoded", b"\n".join(hexed)))
    return views


def scan(blob: bytes, where: str) -> list[Hit]:
    """Every trace of a canary in ``blob``."""
    hits: list[Hit] = []
    for form, view in decoded_views(blob):
        for match in _MARKER_ANY_CASE.finditer(view):
            token = _TOKEN.match(view, match.start())
            shown = token.group() if token else view[match.start() : match.start() + 24]
            hits.append(Hit(where, form, shown.decode("latin-1")))
        for match in _PHONE.finditer(view):
            hits.append(Hit(where, form, match.group().decode("latin-1")))
    for form, marker in _ENCODED_MARKERS:
        if marker in blob:
            hits.append(Hit(where, f"marker in {form}", marker.decode("latin-1")))
    return hits


# A byte that no searched form can contain (each is made of letters, digits and "+/=_%.- "):
# a blob may be cut there and its pieces scanned apart with the same result.
_SEPARATOR = re.compile(rb"[^A-Za-z0-9+/=_%. -]")
PIECE_BYTES = 1 << 20
PARALLEL_FROM_BYTES = 16 << 20  # below, starting a second process costs more than it saves


def pieces(blob: bytes, size: int | None = None) -> list[bytes]:
    """``blob`` cut into pieces of about ``size`` bytes (``PIECE_BYTES``), each cut at a
    separator byte."""
    size = size or PIECE_BYTES
    out = []
    start = 0
    while len(blob) - start > size:
        cut = _SEPARATOR.search(blob, start + size)
        if cut is None:
            break
        out.append(blob[start : cut.start()])
        start = cut.start()
    out.append(blob[start:])
    return out


def _scan_pieces(work: list[tuple[int, bytes, str]]) -> list[tuple[int, list[Hit]]]:
    return [(index, scan(piece, where)) for index, piece, where in work]


def scan_all(items: list[tuple[bytes, str]], processes: int | None = None) -> list[list[Hit]]:
    """``scan(blob, where)`` of each item, in order; on two processes when there is a lot to
    read (the audit's 1,000-person run has some 40 MB)."""
    work = [(i, piece, where) for i, (blob, where) in enumerate(items) for piece in pieces(blob)]
    processes = min(2, os.cpu_count() or 1) if processes is None else processes
    total = sum(len(piece) for _, piece, _ in work)
    found: list[list[Hit]] = [[] for _ in items]
    if processes < 2 or total < PARALLEL_FROM_BYTES:
        done = _scan_pieces(work)
    else:
        # Big pieces first, dealt alternately: two halves of about the same size.
        work.sort(key=lambda w: -len(w[1]))
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as helper:
            theirs = helper.submit(_scan_pieces, work[1::2])
            done = _scan_pieces(work[0::2]) + theirs.result()
    for index, hits in sorted(done, key=lambda d: d[0]):
        found[index] += hits
    return found


def known_forms(canary: str) -> list[bytes]:
    """Direct encodings of one canary (used to confirm a planted canary is detectable)."""
    raw = canary.encode()
    return [raw, base64.b64encode(raw), raw.hex().encode(), raw.hex().upper().encode()]
