"""Small value types shared by every spec section.

Durations are finite and bounded: a spec that validates must be one that can
run, so `duration: .inf` or a century-long load is refused here, with the
field and the value, rather than by a MemoryError minutes into a run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY
YEAR = 366 * DAY

_UNITS = {"ms": 0.001, "s": 1.0, "m": MINUTE, "h": HOUR, "d": DAY}
_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$"
_DURATION = re.compile(_PATTERN)


_EXPECTED = "expected a duration like 30, '30s', '2m', '1h' or '2d'"


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as '90s', '2m', '1.5h', '250ms', '2d'."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(_EXPECTED)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(_EXPECTED)
        number, unit = match.groups()
        return float(number) * _UNITS[unit or "s"]
    return float(value)


def describe_seconds(seconds: float) -> str:
    """A bound as a person reads it: '1 h (3600 s)'."""
    for unit, size in (("days", DAY), ("h", HOUR), ("min", MINUTE)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit} ({seconds:g} s)"
    return f"{seconds:g} s"


@dataclass(frozen=True)
class Duration:
    """A duration in seconds (a number, or a string with a unit), finite and in bounds.

    Used as ``Annotated[float, Duration(maximum=HOUR)]``. Validation and the JSON
    Schema come from the same bounds: the schema holds numbers to them exactly, and
    strings to the duration pattern only (`"2h"` for a 1 h ceiling passes the schema
    and is refused by the loader), in standard JSON Schema keywords.
    """

    maximum: float = YEAR
    allow_zero: bool = False

    def validate(self, value: Any) -> float:
        seconds = self._as_seconds(value)
        if not math.isfinite(seconds):
            raise PydanticCustomError("duration_finite", "must be a finite number of seconds")
        if seconds < 0 or (seconds == 0 and not self.allow_zero):
            lowest = "0 or more" if self.allow_zero else "greater than 0"
            raise PydanticCustomError("duration_low", f"must be {lowest} seconds")
        if seconds > self.maximum:
            limit = describe_seconds(self.maximum)
            raise PydanticCustomError("duration_high", f"must be at most {limit}")
        return seconds

    @staticmethod
    def _as_seconds(value: Any) -> float:
        try:
            return parse_duration(value)
        except (ValueError, OverflowError) as e:
            raise PydanticCustomError("duration_type", str(e)) from e

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.validate, serialization=core_schema.plain_serializer_function_ser_schema(float)
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        number: dict[str, Any] = {"type": "number", "maximum": self.maximum}
        number["minimum" if self.allow_zero else "exclusiveMinimum"] = 0
        text = {"type": "string", "pattern": _PATTERN}
        return {"anyOf": [number, text]}


Seconds = Annotated[float, Duration()]
"""A strictly positive duration in seconds, at most a year."""

LoadSeconds = Annotated[float, Duration(maximum=WEEK)]
"""The length of a load phase or of a part of it: positive, at most a week."""

LoadOffset = Annotated[float, Duration(maximum=WEEK, allow_zero=True)]
"""A time within a load phase (warmup, a fault's time): 0 to a week."""
