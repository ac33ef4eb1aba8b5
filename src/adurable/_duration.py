"""Duration: a whole number of seconds, as the service counts time (PROTOCOL §11.1)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from adurable._errors import ValidationError


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of time in whole seconds. Factories truncate: ``from_seconds(1.9)`` is 1 s."""

    seconds: int = 0

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValidationError("Duration seconds must be positive")

    @classmethod
    def from_seconds(cls, value: float) -> Duration:
        return cls(int(value))

    @classmethod
    def from_minutes(cls, value: float) -> Duration:
        return cls(int(value * 60))

    @classmethod
    def from_hours(cls, value: float) -> Duration:
        return cls(int(value * 3600))

    @classmethod
    def from_days(cls, value: float) -> Duration:
        return cls(int(value * 86400))

    @classmethod
    def from_timedelta(cls, value: _dt.timedelta) -> Duration:
        return cls(int(value.total_seconds()))

    def to_seconds(self) -> int:
        return self.seconds

    def to_timedelta(self) -> _dt.timedelta:
        return _dt.timedelta(seconds=self.seconds)
