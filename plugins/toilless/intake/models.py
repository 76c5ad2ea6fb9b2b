"""The Alertmanager webhook payload (version 4), as Alertmanager 0.25+ sends it. Pure: pydantic only."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

#: Alertmanager leaves endsAt of a firing alert at Go's zero time.
GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
#: Alertmanager writes RFC 3339 (Go's time.Time JSON); pydantic alone would also take 12345 or "12345" as epoch seconds.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z")
#: No alert started before Prometheus existed; a year like 9999 is a broken clock (and overflows on conversion).
EARLIEST_YEAR = 2000
LATEST_YEAR = 2999


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp string, e.g. 2026-11-24T11:58:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


class Alert(BaseModel):
    """One alert of a notification group."""

    # Alertmanager may add fields in later versions; unknown keys are kept, not refused.
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: Timestamp
    endsAt: Timestamp | None = None
    generatorURL: str = ""
    # Alertmanager's fingerprint is 16 hex digits; other senders may use longer ids, never empty or with spaces.
    fingerprint: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname"):
            raise ValueError("labels.alertname is required")
        return labels

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must carry a timezone (RFC 3339)")
        return value

    @field_validator("startsAt")
    @classmethod
    def _plausible_start(cls, value: datetime) -> datetime:
        if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise ValueError(f"year {value.year} is not a plausible alert start ({EARLIEST_YEAR}-{LATEST_YEAR})")
        return value

    @field_validator("endsAt")
    @classmethod
    def _plausible_end(cls, value: datetime | None) -> datetime | None:
        if value is None or value == GO_ZERO_TIME:  # Alertmanager's "not ended"
            return value
        if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise ValueError(f"year {value.year} is not a plausible alert end ({EARLIEST_YEAR}-{LATEST_YEAR})")
        return value

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]

    @property
    def starts_at_utc(self) -> str:
        """startsAt normalised (UTC, microseconds): equal for every Alertmanager replica that sends the alert."""
        return self.startsAt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

    @property
    def ends_at_utc(self) -> str | None:
        if self.endsAt is None or self.endsAt <= GO_ZERO_TIME:
            return None
        return self.endsAt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class WebhookPayload(BaseModel):
    """The body of Alertmanager's ``webhook_configs`` notification, version 4."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = ""
    truncatedAlerts: int = Field(default=0, ge=0, le=1_000_000_000)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert] = Field(min_length=1, max_length=5000)


def validation_errors(error: Exception) -> list[str]:
    """pydantic's ValidationError as short ``where: what`` lines a caller can act on."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return [str(error)]
    lines = []
    for item in errors():
        where = ".".join(str(part) for part in item.get("loc", ())) or "body"
        lines.append(f"{where}: {item.get('msg', 'invalid')}")
    return lines
