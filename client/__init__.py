"""The end-user side of Sealpost: a headless client core (keys, store, sync) and the TUI."""
