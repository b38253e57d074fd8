"""Identity-derived values on the anonymous channel, in any field or encoding.

The relay (and the shuffler) know every handle, every account's public keys, and can compute
anything from them; a business knows its customers' phone numbers. So a value derived from
an identity (a hash of the handle, the digits of a phone number, a key or its fingerprint)
anywhere in what a device sends anonymously names its sender, however it is encoded. The
attack computes, for every account, the values such an adversary would try:

- the handle (and ``@handle``), as a word;
- digests of the handle, of each of the person's phone numbers (as written, as digits with
  and without the country code) and of the keys: MD5, SHA-1, SHA-256, SHA-512, SHA3-256,
  BLAKE2b and BLAKE2s, each as raw bytes, hex (any case) and base64 (standard, URL-safe,
  padded or not), any prefix of 8 bytes, 12 hex or 10 base64 characters or more;
- the phone numbers' digits (10 or more in a row), and the account's public keys (raw,
  base64, hex) and their fingerprint;

and searches for them in every request of the anonymous channel (at the shuffler, and every
report-bearing request at the relay: request line, headers and body, as sent and decoded
from percent-encoding, base64 and hex) and in the bytes of every token. It also tests the one
field too short to search, the report's outcome (one of k = 4 values): the value a digest of
the sender's handle picks (its first byte modulo k) named far more often than 1 in k means
it carries the handle.
"""

import base64
import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sealpost.audit.checks import Check, make_check
from sealpost.audit.received import Received
from sealpost.audit.recorder import Exchange
from sealpost.audit.scan import decoded_views
from sealpost.audit.stats import binomial_tail
from shared.encoding import b64decode
from shared.keys import key_fingerprint
from shared.signals import OUTCOMES

RAW_BYTES = 8  # a prefix this long of a digest or key, raw, is searched for
HEX_CHARS = 12  # 48 bits
B64_CHARS = 10  # 60 bits
DIGITS = 10  # a phone number's digits without its country code
ALPHA = 1e-6  # the outcome test's false alarm rate

DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "md5": lambda b: hashlib.md5(b).digest(),
    "sha1": lambda b: hashlib.sha1(b).digest(),
    "sha256": lambda b: hashlib.sha256(b).digest(),
    "sha512": lambda b: hashlib.sha512(b).digest(),
    "sha3_256": lambda b: hashlib.sha3_256(b).digest(),
    "blake2b": lambda b: hashlib.blake2b(b).digest(),
    "blake2s": lambda b: hashlib.blake2s(b).digest(),
}


@dataclass
class Identity:
    """What is known about one account that could be derived from: its handle, its phone
    numbers (persons: as their businesses hold them) and its public keys (base64)."""

    handle: str
    phones: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


@dataclass
class Forms:
    """Every searched form of every identity, indexed by the prefix searched for."""

    raw: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    hexed: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    b64: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    words: dict[bytes, tuple[str, str]] = field(default_factory=dict)  # handles, digits

    def add_bytes(self, value: bytes, owner: str, what: str) -> None:
        """``value`` (a digest or a key) raw, as hex and as base64, by prefix."""
        self.raw.setdefault(value[:RAW_BYTES], (owner, what))
        for text in (value.hex(), value.hex().upper()):
            self.hexed.setdefault(text[:HEX_CHARS].encode(), (owner, f"{what}, hex"))
        for text in (base64.b64encode(value), base64.urlsafe_b64encode(value)):
            self.b64.setdefault(text[:B64_CHARS], (owner, f"{what}, base64"))


def identity_forms(identities: Iterable[Identity]) -> Forms:
    forms = Forms()
    for person in identities:
        owner = person.handle
        forms.words[person.handle.lower().encode()] = (owner, "the handle")
        sources: list[tuple[str, bytes]] = [
            ("the handle", person.handle.encode()),
            ("@handle", f"@{person.handle}".encode()),
        ]
        for phone in person.phones:
            digits = re.sub(r"\D", "", phone)
            national = digits[2:] if phone.startswith("+39") else digits
            for text in {phone, "+" + digits, digits, national}:
                sources.append(("a phone number", text.encode()))
            forms.words.setdefault(national.encode(), (owner, "phone digits"))
            forms.raw.setdefault(national.encode()[:RAW_BYTES], (owner, "phone digits, raw"))
            forms.raw.setdefault(digits.encode()[:RAW_BYTES], (owner, "phone digits, raw"))
        for key in person.keys:
            raw = b64decode(key)
            sources.append(("a public key", raw))
            forms.add_bytes(raw, owner, "a public key")
        if len(person.keys) == 2:
            fingerprint = bytes.fromhex(key_fingerprint(*person.keys))
            forms.add_bytes(fingerprint, owner, "the key fingerprint")
        for what, source in sources:
            for name, digest in DIGESTS.items():
                forms.add_bytes(digest(source), owner, f"{name} of {what}")
    return forms


_RUN = re.compile(rb"[A-Za-z0-9+/=_.@-]{8,}")
_DIGIT_RUN = re.compile(rb"\d{%d,}" % DIGITS)


@dataclass(frozen=True)
class Trace:
    where: str
    owner: str
    what: str


def search(blob: bytes, where: str, forms: Forms, raw: bool = True) -> list[Trace]:
    """Every identity form in one blob: text forms within runs of token characters, and
    (``raw``: a decoded, binary blob) raw prefixes anywhere."""
    found: list[Trace] = []
    for match in _RUN.finditer(blob):
        run = match.group()
        lowered = run.lower()
        for word in re.split(rb"[^a-z0-9_.-]+", lowered):
            hit = forms.words.get(word)
            if hit:
                found.append(Trace(where, *hit))
        for index, width in ((forms.hexed, HEX_CHARS), (forms.b64, B64_CHARS)):
            for i in range(len(run) - width + 1):
                hit = index.get(run[i : i + width])
                if hit:
                    found.append(Trace(where, *hit))
    for match in _DIGIT_RUN.finditer(blob):
        run = match.group()
        for i in range(len(run) - DIGITS + 1):
            hit = forms.words.get(run[i : i + DIGITS])
            if hit:
                found.append(Trace(where, *hit))
    for i in range(len(blob) - RAW_BYTES + 1 if raw else 0):
        hit = forms.raw.get(blob[i : i + RAW_BYTES])
        if hit:
            found.append(Trace(where, *hit))
    return found


def handle_outcome(digest: bytes) -> str:
    """The outcome a digest of a handle picks: its first byte modulo k."""
    return OUTCOMES[digest[0] % len(OUTCOMES)]


def _with_outcome(reports: Sequence[Received], sender: dict[str, str]) -> list[Received]:
    """The reports whose sender is known and that carry an outcome (not no_signal)."""
    return [r for r in reports if r.report.token_input in sender and r.report.outcome in OUTCOMES]


def _outcome_match(reports: Sequence[Received], sender: dict[str, str]) -> dict[str, int]:
    """Per digest, how many reports name the outcome that digest of the sender's handle
    picks."""
    matches: Counter[str] = Counter()
    for r in reports:
        handle = sender[r.report.token_input]
        for name, digest in DIGESTS.items():
            matches[name] += r.report.outcome == handle_outcome(digest(handle.encode()))
    return dict(matches)


def identity_values(
    anonymous: Sequence[Exchange],
    reports: Sequence[Received],
    identities: Sequence[Identity],
    sender: dict[str, str],
) -> Check:
    """``anonymous``: every request of the anonymous channel (at the shuffler and at the
    relay); ``reports``: the reports the relay received; ``sender``: token input -> handle
    (ground truth, for the outcome test)."""
    forms = identity_forms(identities)
    traces: list[Trace] = []
    for ex in anonymous:
        where = ex.label()
        seen: set[tuple[str, str]] = set()
        for view_name, view in decoded_views(ex.wire):
            # Text views hold text forms only; raw bytes come out of base64 and hex.
            binary = view_name in ("base64-decoded", "hex-decoded")
            for trace in search(view, f"{where} ({view_name})", forms, raw=binary):
                if (trace.owner, trace.what) not in seen:
                    seen.add((trace.owner, trace.what))
                    traces.append(trace)
    for r in reports:
        token = r.report.token
        traces += search(
            token.input + token.output, f"token of a {r.report.campaign_id} report", forms
        )
    per_owner: dict[str, set[str]] = defaultdict(set)
    for trace in traces:
        per_owner[trace.owner].add(trace.what)
    violations = [f"{t.where}: {t.what} of {t.owner}" for t in traces]
    spoken = _with_outcome(reports, sender)
    matches = _outcome_match(spoken, sender)
    n, k = len(spoken), len(OUTCOMES)
    for name, m in matches.items():
        p_value = binomial_tail(n, 1 / k, m)
        if n and p_value < ALPHA:
            violations.append(
                f"the outcome of {m} of {n} reports is the one the {name} of their sender's "
                f"handle picks (chance: {n / k:.1f}, p = {p_value:.2g})"
            )
    linked = sum(1 for r in reports if sender.get(r.report.token_input) in per_owner)
    return make_check(
        "identity_values",
        "No identity-derived value (hashed handle, phone digits, keys) in any anonymous field",
        violations,
        f"{len(anonymous):,} anonymous requests and {len(reports):,} tokens searched for "
        f"{len(forms.raw) + len(forms.hexed) + len(forms.b64) + len(forms.words):,} forms of "
        f"{len(identities):,} identities (handles, phone numbers, keys: {len(DIGESTS)} digests, "
        "raw, hex, base64, decoded views); report outcomes against the one each digest of "
        "the handle picks",
        measured=(
            f"values found naming {len(per_owner)} of {len(identities)} accounts; "
            f"{linked} of {len(reports)} reports linked to their sender by them; "
            f"outcomes a handle digest picks: {max(matches.values(), default=0)} of {n} "
            f"(chance {n / k:.1f})"
        ),
        accounts_named=len(per_owner),
        reports_linked=linked,
        outcome_picked_by_handle_digest=matches,
        forms=sorted({t.what for t in traces})[:20],
    )
