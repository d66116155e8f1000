"""Manifest builders: plain dicts, one module per object family, no client needed."""

from __future__ import annotations

from typing import Any

Manifest = dict[str, Any]
