"""The ``sealpost`` command: one entry point that composes the relay and the client."""
