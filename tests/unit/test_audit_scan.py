"""The audit's canary scan gives the same traces whether a blob is read whole or cut into
pieces on two processes: cuts fall only where no searched form can be."""

import base64
import random

from sealpost.audit import scan as scanner


def _haystack() -> bytes:
    rng = random.Random(7)
    parts = []
    for i in range(300):
        filler = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 90)))
        canary = f"CANARY-NAME-{i:010x}".encode()
        form = i % 5
        if form == 0:
            parts.append(canary)
        elif form == 1:
            parts.append(base64.b64encode(b"padding " + canary))
        elif form == 2:
            parts.append(canary.hex().encode())
        elif form == 3:
            parts.append(b"call +39 345 " + str(1_000_000 + i).encode())
        else:
            parts.append(b"%43%41%4E%41%52%59")
        parts.append(filler)
    return b"".join(parts)


def test_pieces_cut_only_at_separators_and_lose_nothing():
    blob = _haystack()
    cut = scanner.pieces(blob, size=100)
    assert b"".join(cut) == blob and len(cut) > 50
    for piece in cut[1:]:
        assert scanner._SEPARATOR.match(piece)


def test_two_processes_find_what_one_whole_scan_finds(monkeypatch):
    blob = _haystack()

    # The same canaries found. Not always the same list of hits: an encoded marker counts once
    # a piece, a bare marker is shown with what follows it up to the piece's end, and a piece
    # without "%" has no percent-decoded view (its canaries are found in clear instead).
    def trace(hit: scanner.Hit) -> str:
        return hit.found if hit.found.startswith(("CANARY-", "+39")) else hit.found[:6]

    whole = {trace(h) for h in scanner.scan(blob, "x")}
    assert len(whole) >= 200  # the 240 tokens and phone numbers, and markers
    monkeypatch.setattr(scanner, "PIECE_BYTES", 100)
    monkeypatch.setattr(scanner, "PARALLEL_FROM_BYTES", 0)
    items = [(blob, "x"), (b"nothing here", "y"), (blob[:500], "z")]
    found = scanner.scan_all(items, processes=2)
    assert {trace(h) for h in found[0]} == whole
    assert found[1] == []
    assert found[2] and all(h.where == "z" for h in found[2])
    one = scanner.scan_all(items, processes=1)
    assert [{trace(h) for h in f} for f in one] == [{trace(h) for h in f} for f in found]
