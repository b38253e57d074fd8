"""Screens and modals of the person-side TUI."""
