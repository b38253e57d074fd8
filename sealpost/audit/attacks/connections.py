"""Address and connection linkage: reports must reach the relay only in the shuffler's
batches, each report on a connection of its own.

The relay sees the source address and port of every connection. A report that reaches it
any other way than in a batch the shuffler signed comes from the device's own address (in a
deployment; the audit's devices all speak from loopback), and on the device's own connection
if the device reused the one its account speaks on: either names its sender, whatever the
report says. At the shuffler, which sees addresses by design, two reports on one connection
are linked to each other (one device sent both).

The attack: every request the relay received is searched for the token inputs of the run's
reports; each report found outside a shuffler batch is one the relay can place, and it is
linked to an account when its connection (address and port) also carried that account's
signed requests. At the shuffler, two reports of one device must not share a connection
(the ground truth tells a kept-alive connection from a port the kernel gave out again).
"""

from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise

from sealpost.audit.checks import Check, make_check
from sealpost.audit.received import reports_in
from sealpost.audit.recorder import Exchange
from shared.shuffled import KEY_HEADER, REPORTS_PATH, SHUFFLED_PATH
from shared.signals import InvalidReport, decode_report

# Two requests from one address and port closer than this came on one connection: the
# kernel does not hand a closed connection's port out again before TIME_WAIT (60 s) ends.
SAME_CONNECTION_S = 30.0


def _tokens(ex: Exchange, known: set[str]) -> list[str]:
    """The known token inputs a request carries, in a report or anywhere in its bytes."""
    found = []
    for raw in reports_in(ex):
        try:
            found.append(decode_report(raw.encode()).token_input)
        except InvalidReport:
            continue
    if not found:
        text = ex.wire.decode("latin-1")
        found = [t for t in known if t in text]
    return [t for t in found if t in known]


def connection_linkage(
    exchanges: Sequence[Exchange],
    at_shuffler: Sequence[Exchange],
    shuffler_key: str,
    sender: dict[str, str],
) -> Check:
    """``exchanges``: what the relay received; ``at_shuffler``: what the shuffler received;
    ``shuffler_key``: the key the audited shuffler signs its batches with; ``sender``: token
    input -> handle (ground truth, to score the relay)."""
    known = set(sender)
    signed_on: dict[str, list[tuple[float, str]]] = defaultdict(list)  # address:port -> ...

    for ex in exchanges:
        handle = ex.header("sealpost-handle")
        if handle:
            signed_on[ex.client].append((ex.at, handle))

    def accounts_on(ex: Exchange) -> set[str]:
        """Accounts whose signed requests came on this request's connection."""
        return {h for at, h in signed_on.get(ex.client, []) if abs(at - ex.at) < SAME_CONNECTION_S}

    violations: list[str] = []
    outside = linked = batched = 0
    seen: set[str] = set()
    for ex in exchanges:
        is_batch = ex.method == "POST" and ex.path == SHUFFLED_PATH
        if ex.method != "POST" or not (is_batch or b"token_input" in ex.body):
            continue
        tokens = _tokens(ex, known)
        if not tokens:
            continue
        seen.update(tokens)
        if is_batch and ex.header(KEY_HEADER) == shuffler_key and ex.status == 200:
            batched += len(tokens)
            continue
        outside += len(tokens)
        accounts = accounts_on(ex)
        right = sum(sender[t] in accounts for t in tokens)
        linked += right
        violations.append(
            f"{ex.label()}: {len(tokens)} report(s) reached the relay outside the shuffler's "
            f"batches, from {ex.client}"
            + (
                f", a connection that carried signed requests of {', '.join(sorted(accounts))}"
                f" ({right} of them their own)"
                if accounts
                else ""
            )
        )
    by_connection: dict[str, list[Exchange]] = defaultdict(list)
    for ex in at_shuffler:
        if ex.method == "POST" and ex.path == REPORTS_PATH:
            by_connection[ex.client].append(ex)
    paired = 0

    def sent_by(ex: Exchange) -> str | None:
        found = _tokens(ex, known)
        return sender[found[0]] if found else None

    for client, requests in by_connection.items():
        requests.sort(key=lambda ex: ex.at)
        for before, after in pairwise(requests):
            # The shuffler pairs reports that come on one address and port; it is right
            # when one device sent both (a kept-alive connection), and merely fooled when
            # the kernel handed a closed connection's port to another device.
            same = sent_by(before)
            if after.at - before.at < SAME_CONNECTION_S and same and same == sent_by(after):
                paired += 1
                violations.append(
                    f"at the shuffler: {before.label()} and {after.label()} came on one "
                    f"connection ({client}): both from one device"
                )
    total = len(seen)
    return make_check(
        "connection_linkage",
        "Reports reach the relay only in the shuffler's batches, each on its own connection",
        violations,
        f"{len(exchanges):,} requests at the relay searched for {len(known):,} token inputs: "
        f"{batched:,} reports in signed shuffler batches, {outside:,} any other way; "
        f"{sum(len(r) for r in by_connection.values()):,} reports at the shuffler on "
        f"{len(by_connection):,} connections",
        measured=(
            f"{outside} of {total} reports reached the relay outside the shuffler's batches "
            f"(from their devices' own addresses; {linked} on their accounts' own connections, "
            f"named outright); {paired} pairs of reports shared a connection to the shuffler "
            "(allowed: none)"
        ),
        reports_in_batches=batched,
        reports_outside_batches=outside,
        linked_by_connection=linked,
        shuffler_connections_with_two_reports=paired,
    )
