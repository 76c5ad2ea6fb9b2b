"""Which instances a run looks at: the configured scope, narrowed (never widened) by the run's Params or an alert."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toilless.common.errors import InvalidInput


def instance_ids_from_alert(alert: Mapping[str, Any] | None, label_names: Iterable[str]) -> list[str]:
    """The instance id an RDS alert carries in its labels (first label name that is set)."""
    if not alert:
        return []
    labels = alert.get("labels") or {}
    for name in label_names:
        value = labels.get(name)
        if isinstance(value, str) and value.strip():
            return [value.strip()]
    return []


def matches_tags(tag_list: Iterable[Mapping[str, str]], tag_filter: Mapping[str, str]) -> bool:
    """True if every ``key: value`` of the filter is among the instance's tags (value ``*`` = any value)."""
    tags = {tag.get("Key"): tag.get("Value") for tag in tag_list}
    return all(key in tags and (value == "*" or tags[key] == value) for key, value in tag_filter.items())


class ScopeParamError(InvalidInput):
    """A run Param (instance ids, tag filter, region) reaches outside the configured scope."""


@dataclass(frozen=True)
class RunScope:
    """Which instances a run looks at, and whether automatic growth may act on them.

    ``automatic_growth`` is False when a Param chose instances the configuration does not select (the configuration
    names no instances, tag filter or region): those may still be grown, but only with a person's approval.
    """

    instance_ids: tuple[str, ...]
    tag_filter: dict[str, str]
    region: str | None
    automatic_growth: bool
    notes: tuple[str, ...] = ()


def run_scope(
    settings: Mapping[str, Any], params: Mapping[str, Any], alert_instance_ids: Sequence[str] = ()
) -> RunScope:
    """The run's scope: the configured ``instance_ids`` / ``tag_filter`` / ``region``, narrowed by the run's Params.

    Rule (one for every scope Param): a Param may only narrow an explicitly configured scope; anything outside it is
    refused (:class:`ScopeParamError`, not retried). Where the configuration sets no explicit scope (every instance
    of the region), automatic growth applies only to what the configuration selects: a run aimed by Params at chosen
    instances, tags or a region still decides, but every growth needs a person's approval.
    Instance ids from an alert are checked against an explicit configured scope the same way.
    """
    configured_ids = [str(i) for i in settings.get("instance_ids") or []]
    configured_tags = {str(k): str(v) for k, v in dict(settings.get("tag_filter") or {}).items()}
    configured_region = settings.get("region") or None
    param_ids = [str(i) for i in alert_instance_ids or params.get("instance_ids") or []]
    param_tags = {str(k): str(v) for k, v in dict(params.get("tag_filter") or {}).items()}
    param_region = params.get("region") or None
    from_alert = bool(alert_instance_ids)
    explicit = bool(configured_ids or configured_tags)
    notes: list[str] = []
    automatic = True

    if param_region and param_region != configured_region:
        if configured_region:
            raise ScopeParamError(
                f"Param region {param_region!r} is outside the configured region {configured_region!r}: a run may "
                "only narrow the configured scope. Change region in include/config/rds_storage_guard.yaml or the "
                "Variable toilless_rds_storage_guard instead."
            )
        automatic = False
        notes.append(f"region {param_region} chosen by Param: growth needs approval")
    region = param_region or configured_region

    if configured_ids:
        outside = sorted(set(param_ids) - set(configured_ids))
        if outside:
            raise ScopeParamError(
                f"instance(s) {', '.join(outside)} are not among the configured instance_ids: a run may only "
                "narrow the configured scope. Add them to instance_ids in the configuration instead."
            )
        ids = param_ids or configured_ids
        # A tag filter Param on top of configured ids only drops instances.
        return RunScope(tuple(ids), param_tags, region, automatic, tuple(notes))

    if configured_tags:
        for key, value in param_tags.items():
            if key in configured_tags and value != "*" and configured_tags[key] not in ("*", value):
                raise ScopeParamError(
                    f"Param tag_filter {key}={value!r} is outside the configured tag filter "
                    f"{key}={configured_tags[key]!r}: a run may only narrow the configured scope."
                )
        # Every configured condition stays; a Param adds conditions or pins a configured "*" to one value.
        tags = dict(configured_tags)
        for key, value in param_tags.items():
            if value != "*" or key not in tags:
                tags[key] = value
        # Requested ids that the configured filter does not select are refused after describing (check_in_scope).
        return RunScope(tuple(param_ids), tags, region, automatic, tuple(notes))

    if not explicit and (param_tags or (param_ids and not from_alert)):
        automatic = False
        notes.append("instances chosen by Param (the configuration selects every instance): growth needs approval")
    if param_ids:
        return RunScope(tuple(param_ids), {}, region, automatic, tuple(notes))
    return RunScope((), param_tags, region, automatic, tuple(notes))


def check_in_scope(requested_ids: Sequence[str], found_ids: Iterable[str], tag_filter: Mapping[str, str]) -> None:
    """Refuse requested instances that exist but the configured tag filter does not select."""
    outside = sorted(set(requested_ids) - set(found_ids))
    if outside and tag_filter:
        raise ScopeParamError(
            f"instance(s) {', '.join(outside)} do not match the configured tag filter {dict(tag_filter)}: a run may "
            "only narrow the configured scope."
        )
