"""Placeholder: filled by the models work."""
