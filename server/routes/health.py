from fastapi import APIRouter

from shared.api import Health
from shared.version import PROTOCOL_VERSION

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    """Liveness and the protocol version this relay speaks."""
    return Health(status="ok", protocol=PROTOCOL_VERSION)
