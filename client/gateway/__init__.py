"""A WhatsApp-Cloud-API-compatible business gateway (``sealpost gateway``).

It runs on the business's own machine as a client of the relay, with the business profile's
keys: an integration written for the Cloud API (pywa, heyoo, plain HTTP) sends templates and
replies through it, and it personalises and seals each copy here, as the business console does.
What it tells the integration stays inside Sealpost's privacy boundary: docs/gateway.md.
"""
