"""The audit's attacks: each plays an adversary of the threat model (shared/DESIGN.md) against
what the audited relay, shuffler and devices actually did, and measures how well it does.

Every attack returns a :class:`sealpost.audit.checks.Check` whose ``measured`` line states the
adversary's advantage over chance (or what it found), and which fails against a threshold
stated in its summary. One module per attack:

- ``business_oracle``: a hostile business with an audience of one and sock puppets;
- ``timing``: the relay links reports to people by when things happen, over simulated days;
- ``connections``: reports reaching the relay from a device's own address or connection;
- ``identity``: identity-derived values (hashed handles, phone digits, keys) in any field;
- ``tokens``: token inputs the relay can derive from an identity, or that repeat;
- ``noise``: report outcomes the relay can read without randomized response;
- ``existence``: reports whose absence tells the relay something (a spent budget);
- ``kept``: what the relay keeps per report (times, addresses, order).

``on_run`` plays them all on one audit run (``sealpost/audit/runner.py`` calls it).
"""
