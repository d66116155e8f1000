"""Small value types shared by every spec section."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(value: object) -> object:
    """Accept seconds as a number or a string such as '90s', '2m', '1.5h', '250ms'."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration like 30, '30s', '2m' or '1h', got {value!r}")
        number, unit = match.groups()
        return float(number) * _UNITS[unit or "s"]
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
"""A strictly positive duration in seconds."""

SecondsOrZero = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
"""A duration in seconds that may be zero (e.g. no warmup)."""
