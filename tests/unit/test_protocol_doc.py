"""docs/protocol.md cannot drift from the relay: its endpoint table lists exactly the routes
the relay serves, and its table of error codes every code the relay or the shuffler can
answer, and none that they cannot."""

import re
from pathlib import Path

import pytest

from server.app import create_app
from server.settings import RelaySettings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text()
SOURCES = "".join(
    p.read_text()
    for folder in ("server", "shuffler")
    for p in sorted((ROOT / folder).rglob("*.py"))
)


def _section(start: str, end: str) -> str:
    return DOC[DOC.index(start) : DOC.index(end)]


def _documented_routes() -> set[tuple[str, str]]:
    table = _section("Summary:\n", "### 7.1 ")
    routes = set()
    for methods, path in re.findall(r"^\| ([A-Z /]+) \| `([^`]+)` \|", table, re.M):
        for method in methods.split(" / "):
            routes.add((method.strip(), path.split("?")[0]))
    return routes


@pytest.fixture(scope="module")
def served_routes(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    db = tmp_path_factory.mktemp("relay") / "relay.db"
    app = create_app(RelaySettings(db=f"sqlite:///{db}", auto_migrate=True))
    paths = app.openapi()["paths"]
    served = {(m.upper(), path) for path, ops in paths.items() for m in ops}
    # Served outside FastAPI's routes: the schema itself, and the metrics layer.
    return served | {("GET", "/openapi.json"), ("GET", "/metrics")}


def test_the_endpoint_table_lists_exactly_the_routes_served(served_routes):
    documented = _documented_routes()
    assert sorted(served_routes - documented) == [], "served but not in protocol.md §7"
    assert sorted(documented - served_routes) == [], "in protocol.md §7 but not served"


# How the code names an error: ApiError(status, "code", ...), a batch item's _reject(envelope,
# "code", ...), the shuffler's _error(status, "code", ...), an ErrorDetail(code="code").
_RAISED = (
    r'ApiError\(\s*\d{3}\s*,\s*"([a-z_]+)"',
    r'_reject\(\s*\w+\s*,\s*"([a-z_]+)"',
    r'_error\(\s*\d{3}\s*,\s*"([a-z_]+)"',
    r'ErrorDetail\(\s*code\s*=\s*"([a-z_]+)"',
)


def _documented_codes() -> set[str]:
    table = _section("### 11.2 Error codes", "### 11.3 Limits")
    return set(re.findall(r"^\| (?:\d{3}|other) \| `([a-z_]+)` \|", table, re.M))


def test_every_error_the_code_raises_is_in_the_table():
    raised = {code for pattern in _RAISED for code in re.findall(pattern, SOURCES, re.S)}
    assert raised, "the patterns above no longer find the code's errors"
    assert sorted(raised - _documented_codes()) == [], "raised but not in protocol.md §11.2"


def test_every_code_in_the_table_exists_in_the_code():
    stale = [code for code in _documented_codes() if f'"{code}"' not in SOURCES]
    assert stale == [], "in protocol.md §11.2 but nowhere in server/ or shuffler/"
