"""The audit's checks: each looks at what the relay received or kept and says pass or fail.

Every check returns a :class:`Check` with a name, a verdict, a one-line summary, the figures
behind it (``details``) and the violations it found (the first few shown, all counted).
"""

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from sealpost.audit.recorder import Exchange
from sealpost.audit.scan import scan, scan_all
from sealpost.audit.stats import histogram, spearman
from sealpost.audit.storage import StorageDump
from sealpost.audit.world import WorldResult
from shared import api
from shared.auth import AUTH_HEADERS
from shared.encoding import b64decode
from shared.identifiers import HANDLE_PATTERN
from shared.shuffled import MAX_SHUFFLED, REPORTS_PATH, SHUFFLED_PATH, SHUFFLER_HEADERS
from shared.signals import NO_SIGNAL, OUTCOMES, REPORT_FIELDS, InvalidReport, decode_report
from shared.token_log import KEY_LOG_PATH, KeyLog, KeyLogError, KeyLogHead, verify_log

MAX_SHOWN = 12

# Headers any client library sends; nothing else may cross without being declared here.
TRANSPORT_HEADERS = {
    "host",
    "accept",
    "accept-encoding",
    "connection",
    "user-agent",
    "content-length",
    "content-type",
}
AUTH = {h.lower() for h in AUTH_HEADERS}
# A shuffler's batch carries its key and signature, the only headers it adds.
SHUFFLER = {h.lower() for h in SHUFFLER_HEADERS}


@dataclass
class Check:
    name: str
    title: str
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    # An attack's headline: the adversary's measured advantage (or what it found) against
    # the stated threshold. Empty for the checks that only verify.
    measured: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "passed": self.passed,
            "summary": self.summary,
            "measured": self.measured,
            "violation_count": self.violation_count,
            "violations": self.violations,
            "details": self.details,
        }


def make_check(
    name: str,
    title: str,
    violations: list[str],
    summary: str,
    *,
    measured: str = "",
    **details: Any,
) -> Check:
    """A :class:`Check` that passes when ``violations`` is empty (the first few are kept)."""
    return Check(
        name=name,
        title=title,
        passed=not violations,
        summary=summary,
        details=details,
        violations=violations[:MAX_SHOWN],
        violation_count=len(violations),
        measured=measured,
    )


# --- 1. canaries --------------------------------------------------------------------------------


def canaries_absent(exchanges: list[Exchange], storage: StorageDump, canaries: list[str]) -> Check:
    """No canary, in clear or encoded, in any byte the relay received, answered or kept."""
    items: list[tuple[bytes, str]] = []
    for ex in exchanges:
        for part, blob in (
            ("request line", ex.target.encode("latin-1")),
            ("headers", ex.header_bytes),
            ("body", ex.body),
            ("answer", ex.response),
        ):
            items.append((blob, f"{ex.label()} {part}"))
    items += [(blob, f"storage file {name}") for name, blob in storage.files.items()]
    items.append((storage.rows_text.encode(), "storage rows"))
    items.append((storage.rows_binary, "storage binary columns"))
    scanned = sum(len(blob) for blob, _ in items)
    found_in = scan_all(items)
    hits = []
    for i, found in enumerate(found_in):
        if found and i < 4 * len(exchanges) and i % 4 == 1:  # an exchange's headers: say which
            ex = exchanges[i // 4]
            found = [
                hit
                for name, value in ex.headers
                for hit in scan(f"{name}: {value}".encode("latin-1"), f"{ex.label()} header {name}")
            ] or found
        hits += found
    planted = set(canaries)
    violations = [
        f"{h.where}: {h.found} ({h.form}{', a planted canary' if h.found in planted else ''})"
        for h in hits
    ]
    found = {h.found for h in hits if h.found in planted}
    return make_check(
        "canaries_absent",
        "No canary in any byte the relay saw or kept",
        violations,
        f"{len(canaries):,} canaries planted; {scanned:,} bytes searched "
        f"({len(exchanges):,} requests with answers, {storage.total_bytes:,} bytes of database "
        f"files, {sum(storage.row_counts.values()):,} rows): "
        + (f"{len(hits)} traces of {len(found)} canaries" if hits else "none found"),
        canaries_planted=len(canaries),
        canary_kinds=_kinds(canaries),
        bytes_searched=scanned,
        forms=[
            "clear (any case)",
            "percent-decoded",
            "base64-decoded (standard and URL-safe)",
            "hex-decoded",
            "marker in base64 at 3 alignments, hex, percent-encoding",
        ],
        planted_canaries_found=sorted(found)[:MAX_SHOWN],
    )


def _kinds(canaries: list[str]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for c in canaries:
        kind = c.split("-")[1].lower() if c.startswith("CANARY-") else "phone"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


# --- 2. the anonymous channel -------------------------------------------------------------------


def _strict_json(data: bytes) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(pairs)

    return json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates)


# Where reports travel: straight to the relay (the old channel), from a device to the
# shuffler (one report), and from the shuffler to the relay (a signed, shuffled batch).
DIRECT, TO_SHUFFLER, SHUFFLED = "/v1/signals", REPORTS_PATH, SHUFFLED_PATH


def is_signal_report(ex: Exchange) -> bool:
    return ex.method == "POST" and ex.path in (DIRECT, SHUFFLED)


def is_shuffler_report(ex: Exchange) -> bool:
    """A device's report as the shuffler received it (the audit records the shuffler too)."""
    return ex.method == "POST" and ex.path == TO_SHUFFLER


def _raw_reports(ex: Exchange, body: Any) -> tuple[list[Any] | None, str]:
    """The reports a request carries, or None and why its body is not the declared one."""
    if ex.path == TO_SHUFFLER:
        if not isinstance(body, dict) or set(body) != {"report"}:
            return None, 'body is not exactly {"report": "..."}'
        return [body["report"]], ""
    if not isinstance(body, dict) or set(body) != {"reports"}:
        return None, 'body is not exactly {"reports": [...]}'
    most = MAX_SHUFFLED if ex.path == SHUFFLED else 100
    if not isinstance(body["reports"], list) or not 1 <= len(body["reports"]) <= most:
        return None, f"reports is not a list of 1 to {most} reports"
    return body["reports"], ""


def signal_requests(
    exchanges: list[Exchange], world: WorldResult, shuffler: list[Exchange] | None = None
) -> tuple[Check, list[tuple[float, Any]]]:
    """Every anonymous report request is exactly the declared schema and carries nothing else:
    at the relay (direct or in a shuffler's batch) and at the shuffler (``shuffler``: what
    it received from devices).

    Returns the check and the reports as the relay received them, as (arrival position,
    SignalReport): the exchange index, plus the report's place within a batch.
    """
    handles = set(world.handles)
    # Handles by length, so that a token is searched once per length present (its windows
    # of that length against a set) rather than once per handle: the audit of a 10,000-person
    # run holds hundreds of thousands of reports.
    handle_bytes: dict[int, set[bytes]] = {}
    for h in handles:
        if len(h) >= 6:
            handle_bytes.setdefault(len(h.encode()), set()).add(h.encode())
    message_ids = set(world.message_ids)
    id_bytes = {bytes.fromhex(m) for m in message_ids}  # 16 bytes each
    campaigns = set(world.campaigns.values())
    violations: list[str] = []
    reports: list[tuple[float, Any]] = []
    header_names: set[str] = set()
    at_relay = [ex for ex in exchanges if is_signal_report(ex)]
    at_shuffler = [ex for ex in shuffler or [] if is_shuffler_report(ex)]
    # By identity: ``ex in a_list`` compares dataclasses field by field, quadratic here.
    shuffler_side = {id(ex) for ex in at_shuffler}
    for ex in at_relay + at_shuffler:
        from_device = id(ex) in shuffler_side
        where = ex.label() + (" (at the shuffler)" if from_device else "")
        names = {k for k, _ in ex.headers}
        header_names |= names
        allowed = TRANSPORT_HEADERS | (SHUFFLER if ex.path == SHUFFLED else set())
        if ex.query:
            violations.append(f"{where}: a query string")
        for name in sorted(names & AUTH):
            violations.append(f"{where}: credential header {name}")
        for name in sorted(names & {"cookie", "authorization", "proxy-authorization"}):
            violations.append(f"{where}: {name} header")
        for name in sorted(names - allowed - AUTH):
            violations.append(f"{where}: undeclared header {name}")
        for name, value in ex.headers:
            words = set(re.findall(r"[A-Za-z0-9_.-]+", value))
            if words & handles:
                violations.append(f"{where}: header {name} names an account")
            if words & message_ids:
                violations.append(f"{where}: header {name} carries a message id")
        try:
            body = _strict_json(ex.body)
        except ValueError as exc:
            violations.append(f"{where}: body is not strict JSON ({exc})")
            continue
        raw_reports, problem = _raw_reports(ex, body)
        if raw_reports is None:
            violations.append(f"{where}: {problem}")
            continue
        for i, raw in enumerate(raw_reports):
            if not isinstance(raw, str):
                violations.append(f"{where}: report {i} is not a string")
                continue
            try:
                report = decode_report(raw.encode())
            except InvalidReport as exc:
                violations.append(f"{where}: report {i} does not decode: {exc}")
                continue
            if tuple(sorted(json.loads(raw))) != tuple(sorted(REPORT_FIELDS)):
                violations.append(f"{where}: report {i} has other fields than REPORT_FIELDS")
            if report.campaign_id not in campaigns:
                violations.append(f"{where}: report {i} names an unknown campaign")
            token = report.token.input + report.token.output
            windows = {token[j : j + 16] for j in range(len(token) - 15)}
            if windows & id_bytes or set(re.findall(r"[0-9a-f]{32}", raw)) & message_ids:
                violations.append(f"{where}: report {i} carries a message id")
            if any(
                token[j : j + n] in same_length
                for n, same_length in handle_bytes.items()
                for j in range(len(token) - n + 1)
            ):
                violations.append(f"{where}: report {i} token bytes contain a handle")
            if not from_device:
                reports.append((ex.index + i / len(raw_reports), report))
        answer = _json_or_none(ex.response)
        if from_device:
            if ex.status != 202:
                violations.append(f"{where}: answered {ex.status} {ex.response[:120]!r}")
        elif ex.status != 200 or not answer or answer.get("counted") != len(raw_reports):
            violations.append(f"{where}: the relay answered {ex.status} {ex.response[:120]!r}")
    per_request = [_reports_in(ex) for ex in at_relay]
    return (
        make_check(
            "signal_requests",
            "Every anonymous signal request matches the report schema, with no credential",
            violations,
            f"{len(at_relay):,} report requests at the relay ({_paths(at_relay)}) with "
            f"{len(reports):,} reports"
            + (f", {len(at_shuffler):,} at the shuffler" if shuffler is not None else "")
            + f"; header names seen: {', '.join(sorted(header_names)) or 'none'}",
            requests=len(at_relay),
            reports=len(reports),
            shuffler_requests=len(at_shuffler) if shuffler is not None else None,
            reports_per_request=histogram(n for n in per_request if n),
            smallest_batch=min(per_request, default=0),
            header_names=sorted(header_names),
            report_fields=list(REPORT_FIELDS),
        ),
        reports,
    )


def _paths(requests: list[Exchange]) -> str:
    counts: dict[str, int] = {}
    for ex in requests:
        counts[ex.path] = counts.get(ex.path, 0) + 1
    return ", ".join(f"{n:,} to POST {p}" for p, n in sorted(counts.items())) or "none"


def _reports_in(ex: Exchange) -> int:
    try:
        body = _strict_json(ex.body)
    except ValueError:
        return 0
    found = body.get("reports") if isinstance(body, dict) else None
    return len(found) if isinstance(found, list) else 0


def _safe(ex: Exchange) -> bool:
    try:
        return isinstance(_strict_json(ex.body), dict)
    except ValueError:
        return False


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


# --- 3. unlinkability of tokens -----------------------------------------------------------------

WINDOW = 16


class Fingerprints:
    """Every 16-byte window of some values (raw, base64 text and hex text), so that any stored
    or sent copy of 32 bytes or more of one of them is found by looking at a blob in steps of
    16 bytes: such a copy always covers one whole aligned window."""

    def __init__(self) -> None:
        self.windows: set[bytes] = set()

    def add(self, raw: bytes, b64: str) -> None:
        for form in (raw, b64.encode(), raw.hex().encode()):
            for i in range(len(form) - WINDOW + 1):
                self.windows.add(form[i : i + WINDOW])

    def found_in(self, blob: bytes) -> bool:
        windows = self.windows
        return any(blob[i : i + WINDOW] in windows for i in range(0, len(blob) - WINDOW + 1, 16))


TOKEN_PATHS = ("/v1/signals/tokens", "/v1/signals/tokens/batch")


def token_pairs(ex: Exchange) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(request, answer) of each token issued in a single or batched issuance exchange."""
    request = _json_or_none(ex.body) or {}
    answer = _json_or_none(ex.response) or {}
    if ex.path.endswith("/batch"):
        asked, given = request.get("tokens") or [], answer.get("tokens") or []
        return [
            (a, g)
            for a, g in zip(asked, given, strict=False)
            if isinstance(a, dict) and isinstance(g, dict)
        ]
    return [(request, answer)]


def unlinkability(
    exchanges: list[Exchange],
    storage: StorageDump,
    world: WorldResult,
    reports: list[tuple[float, Any]],
    published_keys: dict[str, str],
    shuffler: list[Exchange] | None = None,
) -> Check:
    """Nothing ties a token's issuance to its redemption, in traffic or in storage.

    ``shuffler``: what the shuffler received, searched for issuance values too; the order
    test uses the relay's arrival order (``reports``)."""
    violations: list[str] = []
    issued = Fingerprints()
    issued_b64: set[str] = set()
    issuance: list[Exchange] = []
    keys_by_campaign: dict[str, set[str]] = {}
    issue_order: dict[tuple[str, str], int] = {}
    issue_stamps: set[str] = set()
    for ex in exchanges:
        if ex.method == "POST" and ex.path in TOKEN_PATHS and ex.status == 200:
            issuance.append(ex)
            for request, answer in token_pairs(ex):
                for value in (
                    request.get("blinded_element"),
                    answer.get("evaluated_element"),
                    answer.get("proof"),
                ):
                    if isinstance(value, str):
                        issued.add(b64decode(value), value)
                        issued_b64.add(value)
                keys_by_campaign.setdefault(answer.get("campaign_id", "?"), set()).add(
                    answer.get("public_key", "")
                )
                handle = ex.header("sealpost-handle") or "?"
                issue_order[(handle, answer.get("campaign_id", "?"))] = ex.index
            for name in ("sealpost-timestamp", "sealpost-nonce", "sealpost-signature"):
                if ex.header(name):
                    issue_stamps.add(ex.header(name) or "")
    redeemed = Fingerprints()
    redeemed_b64: set[str] = set()
    redemption_index: dict[str, float] = {}
    for index, report in reports:
        redeemed.add(report.token.input, report.token_input)
        redeemed.add(report.token.output, report.token_output)
        redeemed_b64 |= {report.token_input, report.token_output}
        redemption_index.setdefault(report.token_input, index)
    signal_exchanges = [ex for ex in exchanges if is_signal_report(ex)]
    signal_exchanges += [ex for ex in shuffler or [] if is_shuffler_report(ex)]
    for ex in signal_exchanges:
        # Whole base64 values are looked up as words; any other copy of 32 bytes or more,
        # in whatever text around it, by the fingerprints.
        words = set(re.findall(r"[0-9A-Za-z+/=]+", ex.wire.decode("latin-1")))
        if issued.found_in(ex.wire) or words & issued_b64:
            violations.append(f"{ex.label()}: carries a value from a token issuance")
        if words & issue_stamps:
            violations.append(f"{ex.label()}: carries an issuance request's timestamp or nonce")
    for ex in issuance:
        if redeemed.found_in(ex.wire + b"\n" + ex.response):
            violations.append(f"{ex.label()}: carries a value from a redeemed report")
    # What the relay keeps: no issuance transcript, no token output, no report.
    kept = b"\n".join([*storage.files.values(), storage.rows_text.encode(), storage.rows_binary])
    if issued.found_in(kept):
        violations.append("storage keeps a blinded element, evaluated element or proof")
    outputs = Fingerprints()
    for _, report in reports:
        outputs.add(report.token.output, report.token_output)
    if outputs.found_in(kept):
        violations.append("storage keeps a redeemed token's output (the reports themselves)")
    # One key per campaign, the same for everyone, the one published anonymously, and the one
    # in the token key log, each copy of which the relay served extends the one before.
    logged, logs_served = _key_log_as_served(exchanges, violations)
    for campaign, keys in keys_by_campaign.items():
        if len(keys) != 1:
            violations.append(f"campaign {campaign}: {len(keys)} different issuer keys handed out")
        elif published_keys.get(campaign) not in keys:
            violations.append(f"campaign {campaign}: the issuance key is not the published one")
        elif logs_served and logged.get(campaign) not in keys:
            violations.append(f"campaign {campaign}: the issuance key is not in the token key log")
    # Order: issuance order against the order reports reached the relay, by the ground truth,
    # campaign by campaign. A report names its campaign, and a later campaign's reports come
    # later (a simulated week): order across campaigns says nothing about who sent what.
    by_campaign: dict[str, list[tuple[int, float]]] = {}
    for r in world.redemptions:
        if (r.handle, r.campaign_id) in issue_order and r.token_input in redemption_index:
            by_campaign.setdefault(r.campaign_id, []).append(
                (issue_order[(r.handle, r.campaign_id)], redemption_index[r.token_input])
            )
    pairs = [pair for found in by_campaign.values() for pair in found]
    rho, bound = 0.0, 1.0  # the campaign whose correlation is nearest its bound
    per_campaign: dict[str, float] = {}
    for campaign, found in by_campaign.items():
        if len(found) <= 2:
            continue
        rho_c = spearman([a for a, _ in found], [b for _, b in found])
        per_campaign[campaign] = round(rho_c, 4)
        # Reports sent together share one arrival position, so the independent units are the
        # positions (a request, or a place in a shuffled batch): the bound is 4 standard
        # errors of rho for that many.
        units = len({b for _, b in found})
        bound_c = 4 / math.sqrt(units - 1) if units > 2 else 1.0
        if abs(rho_c) / bound_c > abs(rho) / bound:
            rho, bound = rho_c, bound_c
        if abs(rho_c) > bound_c:
            violations.append(
                f"campaign {campaign}: issuance order and report order are correlated "
                f"(Spearman {rho_c:+.3f}, bound {bound_c:.3f})"
            )
    delays = sorted(r.send_after for r in world.redemptions)
    spread = (delays[-1] - delays[0]) if delays else 0
    return make_check(
        "token_unlinkability",
        "No value links a token's issuance to its redemption",
        violations,
        f"{len(issuance):,} issuances, {len(reports):,} redemptions: no shared value "
        f"(raw, base64 or hex, any 16-byte stretch); order correlation within a campaign "
        f"at most Spearman {rho:+.3f} (|rho| must stay under {bound:.3f}); "
        f"reports spread over {spread / 3600:.1f} h",
        issuances=len(issuance),
        redemptions=len(reports),
        pairs_with_ground_truth=len(pairs),
        spearman_issue_vs_report_order=round(rho, 4),
        spearman_bound=round(bound, 4),
        spearman_per_campaign=per_campaign,
        report_times_spread_hours=round(spread / 3600, 2),
        keys_per_campaign={c: len(k) for c, k in keys_by_campaign.items()},
        key_logs_served=logs_served,
        stored_token_values="token inputs only (the spent set); no output, no issuance value",
    )


def _key_log_as_served(
    exchanges: list[Exchange], violations: list[str]
) -> tuple[dict[str, str], int]:
    """Each campaign's key in the last token key log the relay served, and how many it served;
    a log that does not verify, or does not extend the one served before, is a violation."""
    seen: KeyLogHead | None = None
    keys: dict[str, str] = {}
    served = 0
    for ex in exchanges:
        if ex.method != "GET" or ex.path != KEY_LOG_PATH or ex.status != 200:
            continue
        served += 1
        try:
            view = verify_log(KeyLog.model_validate_json(ex.response), seen=seen)
        except (ValidationError, KeyLogError) as exc:
            violations.append(f"{ex.label()}: the token key log served does not hold: {exc}")
            continue
        seen, keys = view.head, view.keys
    return keys, served


# --- 4. every other request: a declared schema --------------------------------------------------

_H = HANDLE_PATTERN.strip("^$")
_ID = r"[A-Za-z0-9_.:-]{1,64}"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    body: type[BaseModel] | None
    query: frozenset[str] = frozenset()
    auth: bool = True

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.fullmatch(self.pattern, path) is not None


ROUTES = (
    Route("GET", r"/healthz", None, auth=False),
    Route("POST", r"/v1/accounts", api.RegisterAccount),
    Route("POST", r"/v1/accounts/lookup", api.LookupRequest),
    Route("GET", rf"/v1/accounts/{_H}", None),
    Route("POST", r"/v1/messages", api.Envelope),
    Route("POST", r"/v1/messages/batch", api.BatchRequest),
    Route("GET", rf"/v1/mailboxes/{_H}", None, frozenset({"after", "limit"})),
    Route("POST", rf"/v1/mailboxes/{_H}/ack", api.AckRequest),
    Route("GET", rf"/v1/mailboxes/{_H}/stream", None),
    Route("POST", r"/v1/templates", api.TemplateDraft),
    Route("GET", r"/v1/templates", None, frozenset({"business"})),
    Route("GET", rf"/v1/templates/{_ID}", None),
    Route("POST", r"/v1/campaigns", api.CampaignCreate),
    Route("GET", r"/v1/campaigns", None),
    Route("GET", rf"/v1/campaigns/{_ID}", None),
    Route("POST", rf"/v1/campaigns/{_ID}/cancel", None),
    Route("GET", r"/v1/budget", None),
    Route("GET", r"/v1/quality", None),  # a business reads its own ratings and tier
    Route("POST", r"/v1/budget/top-up", api.TopUp),
    Route("GET", r"/v1/pricing", None),
    Route("GET", r"/v1/prefs", None),
    Route("PUT", r"/v1/prefs/level", api.SetLevel),
    *(
        Route(m, rf"/v1/prefs/{c}/{_H}", None)
        for m in ("PUT", "DELETE")
        for c in ("blocked", "promotions-stopped", "accepted")
    ),
    Route("GET", rf"/v1/signals/keys/{_ID}", None, auth=False),
    Route("GET", KEY_LOG_PATH, None, auth=False),
    Route("POST", r"/v1/signals/tokens", api.TokenRequest),
    Route("POST", r"/v1/signals/tokens/batch", api.TokenBatchRequest),
)


def _key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value (list items collapsed), e.g. ``envelopes[].id``."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            paths.add(path)
            paths |= _key_paths(v, path)
    elif isinstance(value, list):
        for item in value:
            paths |= _key_paths(item, prefix + "[]")
    return paths


def _free_keys(model: type[BaseModel]) -> set[str]:
    """Fields whose keys are data (dict[str, str] such as template variables or examples)."""
    return {name for name, f in model.model_fields.items() if "dict[" in str(f.annotation)}


def declared_schemas(exchanges: list[Exchange]) -> Check:
    """Anything that crosses the boundary is declared in one schema (shared.api)."""
    violations: list[str] = []
    per_route: dict[str, int] = {}
    checked = 0
    for ex in exchanges:
        if is_signal_report(ex):
            continue  # its own, stricter check
        checked += 1
        where = ex.label()
        route = next((r for r in ROUTES if r.matches(ex.method, ex.path)), None)
        if route is None:
            violations.append(f"{where}: no declared endpoint")
            continue
        key = f"{route.method} {route.pattern}"
        per_route[key] = per_route.get(key, 0) + 1
        names = {k for k, _ in ex.headers}
        for name in sorted(names - TRANSPORT_HEADERS - AUTH):
            violations.append(f"{where}: undeclared header {name}")
        if route.auth and not AUTH <= names:
            violations.append(f"{where}: not signed")
        if ex.query:
            params = [p.split("=", 1)[0] for p in ex.query.split("&")]
            for p in params:
                if p not in route.query:
                    violations.append(f"{where}: undeclared query parameter {p!r}")
        if route.body is None:
            if ex.body:
                violations.append(f"{where}: a body on an endpoint that takes none")
            continue
        try:
            raw = _strict_json(ex.body)
            model = route.body.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0:2]
            violations.append(f"{where}: body does not match {route.body.__name__}: {first}")
            continue
        # A lax model could ignore a field; every key sent must survive validation.
        kept = _key_paths(model.model_dump(mode="json", exclude_unset=True, by_alias=True))
        lost = _key_paths(raw) - kept
        lost = {p for p in lost if not any(p.startswith(f + ".") for f in _free_keys(route.body))}
        if lost:
            violations.append(f"{where}: undeclared fields {sorted(lost)[:5]}")
    return make_check(
        "declared_schemas",
        "Every other request's body validates against a declared schema in shared.api",
        violations,
        f"{checked:,} requests on {len(per_route)} endpoints, each body validated against its "
        "model (unknown fields refused), headers and query parameters against the declared set",
        requests=checked,
        requests_per_endpoint=dict(sorted(per_route.items())),
    )


# --- 5. counting, what a business sees, estimates -----------------------------------------------


def counted_once(world: WorldResult, replay: dict[str, Any], counted: dict[str, int]) -> Check:
    """Each report counted exactly once; a replayed request adds nothing.

    ``counted``: per campaign id, the reports the relay counted, read from its database (a
    business only ever sees that count with noise)."""
    violations = []
    for label, cid in world.campaigns.items():
        shown = counted.get(cid, 0)
        sent = world.reporters.get(cid, 0)
        if shown != sent:
            violations.append(f"{label}: the relay counted {shown} reports, clients sent {sent}")
    if replay.get("counted") != 0:
        violations.append(f"a replayed report request was counted again: {replay}")
    if replay.get("reports_after") != replay.get("reports_before"):
        violations.append("the replay changed the campaign's report count")
    return make_check(
        "reports_counted_once",
        "Each report is counted once; a replayed request is refused",
        violations,
        "reports counted per campaign (the relay's database) equal reports sent; replay "
        f"answered {replay.get('answer')}",
        counted={label: counted.get(cid, 0) for label, cid in world.campaigns.items()},
        sent={label: world.reporters.get(cid, 0) for label, cid in world.campaigns.items()},
        replay=replay,
    )


# What a business may read exactly about its campaign: what it did and what it paid, none of
# which depends on any person. Whatever people did is in ``figures``, and only with noise.
EXACT_REPORT_FIELDS = frozenset(
    {
        "id",
        "name",
        "template_id",
        "category",
        "status",
        "stop_reason",
        "send_at",
        "expires_at",
        "budget",
        "targeted",
        "accepted",
        "rejected_budget",
        "scheduled",
        "sent",
        "cancelled",
        "spend",
        "reserved",
        "refunded",
        "figures_at",
        "figures_note",
        "figures",
        "held_until",  # from the template's rating: post-processing of published figures
    }
)
# In the figures, exact only: when, at what privacy cost, and the rebate (computed from the
# noisy counts, so it is no more exact about anyone than they are).
EXACT_FIGURES_FIELDS = frozenset({"published_at", "epsilon", "rebate"})
NOISY_COUNTS = ("delivered", "refused", "not_delivered", "signal_reports", NO_SIGNAL)
# (A figure that may be null, for figures published before it existed, says nothing when so.)
_NOISY_TYPES = (
    api.NoisyCount,
    api.NoisyCount | None,
    dict[str, api.NoisyCount],
    dict[str, api.Estimate],
)
CAMPAIGN_ANSWERS = (
    Route("POST", r"/v1/campaigns", api.CampaignCreate),
    Route("GET", r"/v1/campaigns", None),
    Route("GET", rf"/v1/campaigns/{_ID}", None),
    Route("POST", rf"/v1/campaigns/{_ID}/cancel", None),
)


def _schema_violations() -> list[str]:
    """The declared report itself: only the exact fields above, every other figure noisy."""
    violations = []
    fields = set(api.CampaignReport.model_fields)
    for name in sorted(fields - EXACT_REPORT_FIELDS):
        violations.append(f"shared.api.CampaignReport declares an undeclared field {name!r}")
    for name, info in api.CampaignFigures.model_fields.items():
        if name not in EXACT_FIGURES_FIELDS and info.annotation not in _NOISY_TYPES:
            violations.append(
                f"shared.api.CampaignFigures.{name} is {info.annotation}, not a noisy count "
                "or estimate"
            )
    return violations


def _noisy_counts(figures: dict[str, Any]) -> list[tuple[str, Any]]:
    counts = [(name, figures.get(name)) for name in NOISY_COUNTS]
    by_reason = figures.get("refused_by_reason") or {}
    counts += [(f"refused_by_reason.{r}", c) for r, c in sorted(by_reason.items())]
    return counts


def _report_violations(report: Any, where: str) -> list[str]:
    """What one campaign report, as a business received it, must not show."""
    if not isinstance(report, dict):
        return [f"{where}: not a campaign report"]
    violations = [
        f"{where}: exposes {name!r}, not one of the declared exact fields"
        for name in sorted(set(report) - EXACT_REPORT_FIELDS)
    ]
    figures = report.get("figures")
    if figures is None:
        return violations
    # Copies were sent: the figures are about people, so every one of them carries noise.
    about_people = bool(report.get("sent"))
    noisy = {*NOISY_COUNTS, "refused_by_reason", "interactions"}
    for name in sorted(set(figures) - EXACT_FIGURES_FIELDS - noisy):
        violations.append(f"{where}: figures expose {name!r}, neither noisy nor declared exact")
    if about_people and not figures.get("epsilon", 0) > 0:
        violations.append(f"{where}: figures about people released at no privacy cost")
    for name, count in _noisy_counts(figures):
        if not isinstance(count, dict) or set(count) != {"value", "margin"}:
            violations.append(f"{where}: figures.{name} is not a noisy count: {count!r}")
        elif about_people and not count["margin"] > 0:
            violations.append(f"{where}: figures.{name} is exact (margin {count['margin']})")
    for outcome, found in sorted((figures.get("interactions") or {}).items()):
        if not isinstance(found, dict) or set(found) != {"value", "low", "high"}:
            violations.append(f"{where}: interactions.{outcome} is not an estimate: {found!r}")
        elif about_people and not found["high"] > found["low"]:
            violations.append(f"{where}: interactions.{outcome} has no interval: {found!r}")
    return violations


def _ledger_violations(world: WorldResult) -> list[str]:
    """Money says nothing about people either: every copy is charged when released at its send
    time (an ack moves no money), and a campaign gets at most one rebate, the one its
    published figures name."""
    violations = []
    for label, cid in world.campaigns.items():
        report = world.published[cid]
        lines = [
            line
            for budget in world.budgets.values()
            for line in budget.get("ledger", [])
            if line.get("campaign_id") == cid
        ]
        charged = sum(line["messages"] for line in lines if line["kind"] == "charge")
        # Copies that expired before their send time were never sent, and were refunded.
        unsent = sum(
            line["messages"]
            for line in lines
            if line["kind"] == "refund" and line["note"] == "expired"
        )
        if charged + unsent != report["sent"]:
            violations.append(
                f"{label}: {charged} copies charged (and {unsent} refunded unsent) for "
                f"{report['sent']} sent: charges follow something other than the release"
            )
        rebates = [line["amount"] for line in lines if line["kind"] == "rebate"]
        figures = report.get("figures")
        if len(rebates) > 1:
            violations.append(f"{label}: {len(rebates)} rebates; a campaign gets at most one")
        if rebates and (figures is None or rebates != [figures["rebate"]]):
            violations.append(
                f"{label}: rebate {rebates} is not the one its published figures name"
            )
    return violations


def business_view_noisy(exchanges: list[Exchange], world: WorldResult) -> Check:
    """A business sees no exact figure derived from people: each campaign report it received
    has only the declared exact fields, and its figures (if published) are noisy counts with
    margins and estimates with intervals; its ledger charges copies at release."""
    violations = _schema_violations()
    answers = reports = with_figures = 0
    for ex in exchanges:
        if ex.status not in (200, 201):
            continue
        if not any(r.matches(ex.method, ex.path) for r in CAMPAIGN_ANSWERS):
            continue
        answers += 1
        answer = _json_or_none(ex.response)
        listing = ex.method == "GET" and ex.path == "/v1/campaigns"
        items = (answer or {}).get("campaigns", []) if listing else [answer]
        for item in items:
            reports += 1
            with_figures += isinstance(item, dict) and item.get("figures") is not None
            violations += _report_violations(item, ex.label())
    # The figures must differ from the truth somewhere: margins alone do not prove noise.
    compared = [
        (label, world.published[cid]["figures"]["signal_reports"]["value"], world.reporters[cid])
        for label, cid in world.campaigns.items()
        if world.published[cid].get("figures") and world.reporters.get(cid)
    ]
    if len(compared) >= 2 and all(shown == sent for _, shown, sent in compared):
        violations.append(
            "every campaign's published report count equals the exact count: "
            + ", ".join(f"{label} {sent}" for label, _, sent in compared)
        )
    violations += _ledger_violations(world)
    exact_off = sum(shown != sent for _, shown, sent in compared)
    return make_check(
        "business_view_noisy",
        "A business sees no exact figure about people: declared exact fields, noisy figures",
        violations,
        f"{reports:,} campaign reports in {answers:,} answers to businesses, {with_figures} "
        f"with figures: only the {len(EXACT_REPORT_FIELDS)} declared exact fields; every "
        f"figure about people a noisy count with a margin or an estimate with an interval; "
        f"{exact_off} of {len(compared)} published report counts differ from the truth; "
        "each copy charged at release, at most one rebate per campaign",
        exact_fields=sorted(EXACT_REPORT_FIELDS),
        reports_checked=reports,
        reports_with_figures=with_figures,
        published_report_counts={label: [shown, sent] for label, shown, sent in compared},
    )


def _binomial_tail(m: int, q: float, t: int) -> float:
    """P(X > t) for X ~ Binomial(m, q)."""
    return sum(math.comb(m, i) * q**i * (1 - q) ** (m - i) for i in range(t + 1, m + 1))


def allowed_misses(m: int, confidence: float = 0.95, alpha: float = 0.001) -> int:
    """The most misses of m independent 95% intervals that is not evidence of a broken
    estimator at level ``alpha``: the smallest t with P(Binomial(m, 0.05) > t) <= alpha."""
    t = 0
    while _binomial_tail(m, 1 - confidence, t) > alpha:
        t += 1
    return t


def _published(figures: dict[str, Any] | None, value: str) -> tuple[float, float, float] | None:
    """(estimate, low, high) the figures give for one report value: an outcome's estimate
    and interval, or the noisy no_signal count with its margin."""
    if not figures:
        return None
    if value == NO_SIGNAL:
        count = figures.get(NO_SIGNAL)
        if not isinstance(count, dict):
            return None
        return count["value"], count["value"] - count["margin"], count["value"] + count["margin"]
    found = (figures.get("interactions") or {}).get(value)
    return (found["value"], found["low"], found["high"]) if found else None


def estimates(world: WorldResult) -> tuple[Check, list[dict[str, Any]]]:
    """Published estimates and intervals against the true counts the clients kept: per
    outcome, among the reports that carry a signal; and the reports that carry none."""
    table: list[dict[str, Any]] = []
    for label, cid in world.campaigns.items():
        figures = world.published[cid].get("figures")
        truth = world.true_counts.get(cid, {})
        for value in (*OUTCOMES, NO_SIGNAL):
            found = _published(figures, value)
            row = {
                "campaign": label,
                "campaign_id": cid,
                "event": value,  # an outcome, or no_signal
                "reports": world.reporters.get(cid, 0),  # sent, exactly (the ground truth)
                "published_reports": figures["signal_reports"]["value"] if figures else None,
                "true": truth.get(value, 0),
                "estimate": found[0] if found else None,
                "low": found[1] if found else None,
                "high": found[2] if found else None,
                "covered": None,
            }
            if found:
                row["covered"] = found[1] <= row["true"] <= found[2]
            table.append(row)
    published = [r for r in table if r["covered"] is not None]
    misses = [r for r in published if not r["covered"]]
    limit = allowed_misses(len(published))
    violations = []
    if not published:
        violations.append("no estimate was published")
    if len(misses) > limit:
        violations.extend(
            f"{r['campaign']} {r['event']}: true {r['true']} outside [{r['low']}, {r['high']}]"
            for r in misses
        )
    worst = max(
        (abs(r["estimate"] - r["true"]) / r["reports"] for r in published if r["reports"]),
        default=0.0,
    )
    worst_people = max((abs(r["estimate"] - r["true"]) for r in published), default=0.0)
    return (
        make_check(
            "estimates_vs_truth",
            "Published estimates cover the true counts",
            violations,
            f"{len(published) - len(misses)} of {len(published)} published 95% intervals hold "
            f"the true count (at most {limit} misses allowed); worst error "
            f"{worst_people:.0f} people, {100 * worst:.0f}% of a campaign's reports",
            published=len(published),
            covered=len(published) - len(misses),
            allowed_misses=limit,
            criterion=(
                "Per campaign, each outcome's published interval is a 95% interval around an "
                "unbiased estimate of how many of the reports carrying a signal came from "
                "people with that outcome, and it carries both the devices' k-ary randomized "
                "response and the relay's central noise; the no_signal count's is its noisy "
                "count plus or minus its margin, against the reports the devices sent with no "
                "signal (budget spent). Each misses its true count with probability about "
                "0.05 (every report randomized on its device, every tally noised on its own; "
                "one campaign's outcome estimates share their reports, so they are not quite "
                "independent). The number of misses among m intervals is then about "
                "Binomial(m, 0.05); the check fails when it exceeds the smallest t with "
                "P(X > t) <= 0.001, i.e. when the misses are evidence (at the 0.1% level) "
                "that the estimator or its interval is wrong."
            ),
            worst_error_share=round(worst, 4),
            worst_error_people=round(worst_people, 1),
        ),
        table,
    )


CheckFn = Callable[..., Check]
