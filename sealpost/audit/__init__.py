"""The researcher's audit: a real relay and clients on loopback, every byte the relay sees or
keeps checked against the privacy boundary (see docs/privacy-boundary.md).

``run_audit(AuditOptions(...)) -> AuditResult``; ``sealpost audit`` is its command line.
"""

from sealpost.audit.runner import AuditOptions, AuditResult, run_audit

__all__ = ["AuditOptions", "AuditResult", "run_audit"]
