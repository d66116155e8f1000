"""Faults beyond kill-worker for the local platform, each an event with its window."""
