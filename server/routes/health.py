"""Is the relay alive (``/healthz``), and can it store anything right now (``/readyz``)?"""

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlmodel import Session

from server.auth import DbSession
from server.errors import STORAGE_FULL_MESSAGE, error_response, is_storage_full
from server.models import ReadinessProbe
from server.transactions import TransactionalRoute
from shared.api import Health
from shared.version import PROTOCOL_VERSION

router = APIRouter(tags=["health"], route_class=TransactionalRoute)
# As much as a mid-sized message: a disk with less room than this is full for the relay.
PROBE_BYTES = 16 * 1024


@router.get("/healthz")
def healthz() -> Health:
    """Liveness and the protocol version this relay speaks."""
    return Health(status="ok", protocol=PROTOCOL_VERSION)


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"description": "storage full, or the database unreachable"}},
)
def readyz(session: DbSession) -> Health | JSONResponse:
    """Ready when a write of real size commits now: 503 ``storage_full`` on a full disk, 503
    ``storage_unavailable`` when the database cannot be reached."""
    try:
        _probe(session)
    except Exception as exc:  # any failure to write is not-ready; which one, said below
        session.rollback()
        if is_storage_full(exc):
            return error_response(503, "storage_full", STORAGE_FULL_MESSAGE)
        return error_response(
            503,
            "storage_unavailable",
            f"The relay cannot write to its database ({type(exc).__name__}); see its log.",
        )
    return Health(status="ok", protocol=PROTOCOL_VERSION)


def _probe(session: Session) -> None:
    row = session.get(ReadinessProbe, 1)
    now = int(time.time() * 1000)
    if row is None:
        session.add(ReadinessProbe(id=1, at=now, data=bytes(PROBE_BYTES)))
    else:
        # Fresh bytes each time, so the database writes a page of real size.
        row.at, row.data = now, now.to_bytes(8, "big") * (PROBE_BYTES // 8)
    session.commit()
