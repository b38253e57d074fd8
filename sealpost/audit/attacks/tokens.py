"""Token inputs the relay can link: derived from an identity, reused, or not random.

A report carries its token's input in clear (the relay needs it to verify the token and keep
the spent set). Blinding hides it at issuance, so nothing links it to the account that asked,
as long as the input is fresh randomness: 32 bytes from the device's CSPRNG, one per copy.
The relay, knowing every handle, the campaigns, the message ids it delivered to each account
(they are in the token requests) and each account's public keys, tries what a careless
client might have derived an input from: hashes (SHA-256, SHA-512 cut to 32 bytes, SHA3-256,
BLAKE2b-256, BLAKE2s) of the handle, of the handle and campaign id joined by the usual
separators (either order), of a message id (text or bytes), of a public key, with or without
the campaign, and HMAC-SHA256 of one keyed by the other. An input equal to one of them, or
sharing its first 16 bytes, names its sender. It also looks for inputs used twice (one
person's reports for two campaigns are then linked) and, over all inputs, for bytes that are
not uniform (a chi-square test): a counter or a clock would show there.
"""

import hashlib
import hmac
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from statistics import NormalDist

from sealpost.audit.checks import TOKEN_PATHS, Check, make_check, token_pairs
from sealpost.audit.received import Received
from sealpost.audit.recorder import Exchange
from shared.encoding import b64decode

PREFIX = 16  # bytes of an input compared with a derivation
ALPHA = 1e-6  # the uniformity test's false alarm rate
SEPARATORS = ("", ":", "|", "/", "-", ".", " ", "\n", "#", "@")

HASHES: dict[str, Callable[[bytes], bytes]] = {
    "sha256": lambda b: hashlib.sha256(b).digest(),
    "sha512": lambda b: hashlib.sha512(b).digest()[:32],
    "sha3_256": lambda b: hashlib.sha3_256(b).digest(),
    "blake2b": lambda b: hashlib.blake2b(b, digest_size=32).digest(),
    "blake2s": lambda b: hashlib.blake2s(b).digest(),
}


def derivations(
    handle: str, campaign: str, message_ids: Sequence[str], keys: Sequence[str]
) -> dict[bytes, str]:
    """First PREFIX bytes of every candidate input for (handle, campaign) -> how."""
    sources: list[tuple[str, bytes]] = [
        ("the handle", handle.encode()),
        ("@handle", f"@{handle}".encode()),
    ]
    for sep in SEPARATORS:
        sources.append((f"handle{sep!r}campaign", f"{handle}{sep}{campaign}".encode()))
        sources.append((f"campaign{sep!r}handle", f"{campaign}{sep}{handle}".encode()))
    for msg_id in message_ids:
        sources.append(("the message id", msg_id.encode()))
        sources.append(("the message id's bytes", bytes.fromhex(msg_id)))
    for key in keys:
        sources.append(("a public key", b64decode(key)))
        sources.append(("a public key and the campaign", b64decode(key) + campaign.encode()))
    found: dict[bytes, str] = {}
    for what, source in sources:
        for name, digest in HASHES.items():
            found.setdefault(digest(source)[:PREFIX], f"{name} of {what}")
    for key, message, what in (
        (handle, campaign, "HMAC-SHA256 keyed by the handle"),
        (campaign, handle, "HMAC-SHA256 keyed by the campaign"),
    ):
        mac = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
        found.setdefault(mac[:PREFIX], what)
    return found


def delivered_ids(exchanges: Sequence[Exchange]) -> dict[str, list[str]]:
    """Per account, the message ids it asked tokens for (the relay reads them)."""
    ids: dict[str, list[str]] = defaultdict(list)
    for ex in exchanges:
        if ex.method == "POST" and ex.path in TOKEN_PATHS:
            handle = ex.header("sealpost-handle") or "?"
            for request, _ in token_pairs(ex):
                msg_id = request.get("msg_id")
                if isinstance(msg_id, str) and len(msg_id) % 2 == 0:
                    ids[handle].append(msg_id)
    return dict(ids)


def uniformity(inputs: Sequence[bytes]) -> tuple[float, float]:
    """Chi-square of the byte values of all inputs against uniform, and its p-value (the
    Wilson-Hilferty normal approximation, good at 255 degrees of freedom)."""
    counts = Counter(b for value in inputs for b in value)
    total = sum(counts.values())
    if total < 256 * 5:
        return 0.0, 1.0  # too few bytes for the test to mean anything
    expected = total / 256
    chi2 = sum((counts.get(b, 0) - expected) ** 2 / expected for b in range(256))
    k = 255
    z = ((chi2 / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return chi2, 1 - NormalDist().cdf(z)


def token_linkage(
    reports: Sequence[Received],
    exchanges: Sequence[Exchange],
    handles: Sequence[str],
    keys: dict[str, list[str]],
    sender: dict[str, str],
) -> Check:
    """``reports``: what the relay received; ``exchanges``: its record (for the message
    ids it delivered); ``handles``: every account; ``keys``: each account's public keys;
    ``sender``: token input -> handle (ground truth, to score the relay's guesses)."""
    campaigns = sorted({r.report.campaign_id for r in reports})
    delivered = delivered_ids(exchanges)
    index: dict[bytes, tuple[str, str]] = {}
    for handle in handles:
        for campaign in campaigns:
            for prefix, how in derivations(
                handle, campaign, delivered.get(handle, []), keys.get(handle, [])
            ).items():
                index.setdefault(prefix, (handle, how))
    violations: list[str] = []
    derived = right = 0
    inputs = [r.report.token.input for r in reports]
    for r, raw in zip(reports, inputs, strict=True):
        hit = index.get(raw[:PREFIX])
        if hit is not None:
            derived += 1
            right += hit[0] == sender.get(r.report.token_input)
            violations.append(
                f"a {r.report.campaign_id} report's token input is the {hit[1]} of {hit[0]}"
            )
    uses = Counter(inputs)
    reused = {value: n for value, n in uses.items() if n > 1}
    for value, n in reused.items():
        owners = sorted(
            {
                sender.get(r.report.token_input, "?")
                for r in reports
                if r.report.token.input == value
            }
        )
        violations.append(f"a token input used by {n} reports (sender {', '.join(owners)})")
    prefixes = Counter(value[:PREFIX] for value in uses)
    shared = sum(n for n in prefixes.values() if n > 1)
    if shared:
        violations.append(f"{shared} distinct token inputs share their first {PREFIX} bytes")
    chi2, p_value = uniformity(list(uses))
    if p_value < ALPHA:
        violations.append(
            f"the bytes of the token inputs are not uniform (chi-square {chi2:.0f} on 255 "
            f"degrees of freedom, p = {p_value:.2g}): they are not fresh randomness"
        )
    linked_by_reuse = sum(n for n in reused.values())
    return make_check(
        "token_linkage",
        "Token inputs are fresh randomness: not derived from an identity, never reused",
        violations,
        f"{len(reports):,} token inputs against {len(index):,} derivations from "
        f"{len(handles):,} handles, {len(campaigns)} campaigns, the message ids delivered and "
        f"the public keys; inputs used twice; byte uniformity (chi-square {chi2:.0f}, "
        f"p = {p_value:.3g})",
        measured=(
            f"the relay re-derives {derived} of {len(reports)} token inputs ({right} naming "
            f"the right sender) and links {linked_by_reuse} reports by a reused input "
            "(allowed: none)"
        ),
        derived=derived,
        derived_right=right,
        reused_inputs=len(reused),
        reports_with_reused_input=linked_by_reuse,
        chi_square=round(chi2, 1),
        chi_square_p=float(f"{p_value:.3g}"),
    )
