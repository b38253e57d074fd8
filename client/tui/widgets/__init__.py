"""Widgets of the person-side TUI."""
