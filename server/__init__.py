"""The Sealpost relay: routes, stores and forwards sealed envelopes; never sees plaintext."""
