"""Placeholder: filled by the engine work."""
