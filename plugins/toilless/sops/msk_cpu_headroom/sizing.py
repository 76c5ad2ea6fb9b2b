"""The larger broker type to recommend and what it costs: pure, over the configured broker-type table.

The table (``broker_types`` in include/config/msk_cpu_headroom.yaml) is the **allowed list** of
``TargetInstanceType`` values, each with its vCPUs, family and on-demand price per broker-hour; where the prices come
from is the table's ``source`` setting (shown in every recommendation). A type outside the table is never proposed.

Rule: CPU use is assumed to scale inversely with vCPUs (an estimate: say so); the recommendation is the smallest type
of the same family with more vCPUs whose projected use of the busiest broker is at most ``target_used_pct``; if none
gets there, the largest of the family. Cost difference = (target - current price) x brokers x 730 h per month.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toilless.common.config import ConfigError, number_setting

HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class BrokerType:
    name: str
    family: str
    vcpu: int
    usd_per_hour: float


def broker_types(config: Sequence[Mapping[str, Any]]) -> list[BrokerType]:
    """The configured table, checked (names unique, vCPUs and prices positive)."""
    types = []
    for index, row in enumerate(config):
        where = f"msk_cpu_headroom broker_types[{index}]"
        try:
            name = str(row["type"])
            types.append(
                BrokerType(
                    name=name,
                    family=str(row.get("family") or name.split(".")[1]),
                    vcpu=int(number_setting(row["vcpu"], f"{where}.vcpu", minimum=1, whole=True)),
                    usd_per_hour=number_setting(row["usd_per_hour"], f"{where}.usd_per_hour", above=0),
                )
            )
        except (KeyError, IndexError) as err:
            raise ConfigError(f"{where}: needs type (kafka.<family>.<size>), vcpu and usd_per_hour: {err}") from err
    names = [t.name for t in types]
    if len(set(names)) != len(names):
        raise ConfigError("msk_cpu_headroom broker_types lists a type twice")
    return types


def recommend(
    current_type: str,
    *,
    brokers: int,
    busiest_used_pct: float,
    target_used_pct: float,
    types: Sequence[BrokerType],
) -> dict[str, Any]:
    """The recommended type with the numbers, or ``target_type: None`` and why not."""
    by_name = {t.name: t for t in types}
    current = by_name.get(current_type)
    if current is None:
        return {"target_type": None, "reason": f"current broker type {current_type} is not in the broker-type table"}
    larger = sorted(
        (t for t in types if t.family == current.family and t.vcpu > current.vcpu), key=lambda t: (t.vcpu, t.name)
    )
    if not larger:
        return {"target_type": None, "reason": f"{current_type} is the largest {current.family} type in the table"}

    def projected(candidate: BrokerType) -> float:
        return busiest_used_pct * current.vcpu / candidate.vcpu

    target = next((t for t in larger if projected(t) <= target_used_pct), larger[-1])
    current_month = current.usd_per_hour * brokers * HOURS_PER_MONTH
    target_month = target.usd_per_hour * brokers * HOURS_PER_MONTH
    return {
        "target_type": target.name,
        "current_type": current.name,
        "brokers": brokers,
        "current_vcpu": current.vcpu,
        "target_vcpu": target.vcpu,
        "busiest_used_pct": round(busiest_used_pct, 1),
        "projected_used_pct": round(projected(target), 1),
        "target_used_pct": target_used_pct,
        "reaches_target": projected(target) <= target_used_pct,
        "current_usd_month": round(current_month, 2),
        "target_usd_month": round(target_month, 2),
        "delta_usd_month": round(target_month - current_month, 2),
    }
