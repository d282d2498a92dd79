"""Placeholder: filled by the datasets work."""
