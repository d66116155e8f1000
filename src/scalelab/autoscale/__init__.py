"""Autoscalers as a run component: pluggable policies, every decision recorded as data."""
