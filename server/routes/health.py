from fastapi import APIRouter

from server.transactions import TransactionalRoute
from shared.api import Health
from shared.version import PROTOCOL_VERSION

router = APIRouter(tags=["health"], route_class=TransactionalRoute)


@router.get("/healthz")
def healthz() -> Health:
    """Liveness and the protocol version this relay speaks."""
    return Health(status="ok", protocol=PROTOCOL_VERSION)
