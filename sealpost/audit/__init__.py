"""The researcher's audit: a real relay and clients on loopback, every byte the relay sees or
keeps checked against the privacy boundary (see docs/privacy-boundary.md).

``run_audit(AuditOptions(...)) -> AuditResult``; ``sealpost audit`` is its command line.
"""

from typing import Any

__all__ = ["AuditOptions", "AuditResult", "run_audit"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that a worker process that needs only the scanner (say)
    # does not pay for the relay, the client and the database layer.
    if name in __all__:
        from sealpost.audit import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'sealpost.audit' has no attribute {name!r}")
