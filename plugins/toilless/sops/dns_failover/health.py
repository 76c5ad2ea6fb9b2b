"""How a DNS server is doing, from the raw outcomes of the probe's queries (pure: no Airflow, no network).

One probe asks every configured name over UDP and over TCP, ``tries`` times each, and opens a TCP connection to the
server's port. The verdict:

- **answering**: every name got at least one correct answer on each transport (a lost datagram is what the tries
  are for), no try returned wrong data or an error code, and the typical (median) answer came within the latency
  budget;
- **failing** (reachable): the server is there (some DNS response, or the TCP port accepts connections) but answers
  SERVFAIL/REFUSED/..., wrong data, or too slowly / not at all;
- **unreachable**: no DNS response on any transport and the TCP port refuses or does not accept connections.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

ANSWERING = "answering"
FAILING = "failing"
UNREACHABLE = "unreachable"
#: One try's outcome kinds (the hook sets them).
ANSWER = "answer"
TIMEOUT = "timeout"
REFUSED = "refused"
ERROR = "error"
MAX_REASONS = 10


@dataclass(frozen=True)
class ServerHealth:
    server: str
    state: str
    reasons: tuple[str, ...] = field(default_factory=tuple)
    median_ms: float | None = None
    tries: int = 0
    correct: int = 0

    @property
    def answering(self) -> bool:
        return self.state == ANSWERING

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


def judge(
    server: str,
    outcomes: Iterable[Mapping[str, Any]],
    *,
    tcp_port_open: bool,
    expected: Mapping[tuple[str, str], Iterable[str]],
    max_latency_ms: float,
) -> ServerHealth:
    """The verdict on one server. ``expected`` maps ``(name, type)`` to the expected answers (canonical text)."""
    outcomes = list(outcomes)
    wanted = {key: sorted(values) for key, values in expected.items()}
    reasons: list[str] = []
    responses = [o for o in outcomes if o.get("status") == ANSWER]
    correct_latencies: list[float] = []
    correct_by: dict[tuple[str, str, str], int] = {}
    for outcome in responses:
        key = (str(outcome["name"]), str(outcome["type"]))
        rcode = str(outcome.get("rcode"))
        values = sorted(str(v) for v in outcome.get("values") or [])
        label = f"{key[0]} {key[1]} over {str(outcome.get('transport', '?')).upper()}"
        if rcode != "NOERROR":
            reasons.append(f"{label}: {rcode}")
        elif values != wanted.get(key):
            reasons.append(
                f"{label}: wrong data {', '.join(values) or '(empty)'} (expected {', '.join(wanted.get(key, []))})"
            )
        else:
            correct_latencies.append(float(outcome.get("elapsed_ms") or 0.0))
            slot = (key[0], key[1], str(outcome.get("transport")))
            correct_by[slot] = correct_by.get(slot, 0) + 1
    transports = sorted({str(o.get("transport")) for o in outcomes}) or ["udp", "tcp"]
    for name, kind in wanted:
        for transport in transports:
            if not correct_by.get((name, kind, transport)):
                tried = [
                    o for o in outcomes if (o.get("name"), o.get("type"), o.get("transport")) == (name, kind, transport)
                ]
                kinds = sorted({str(o.get("status")) for o in tried if o.get("status") != ANSWER})
                if kinds:
                    reasons.append(f"{name} {kind} over {transport.upper()}: no correct answer ({', '.join(kinds)})")
                else:
                    reasons.append(f"{name} {kind} over {transport.upper()}: no correct answer")
    median = statistics.median(correct_latencies) if correct_latencies else None
    if median is not None and median > max_latency_ms:
        reasons.append(f"slow: median answer {median:.0f} ms, budget {max_latency_ms:.0f} ms")
    reasons = _unique(reasons)
    common = {"median_ms": median, "tries": len(outcomes), "correct": len(correct_latencies)}
    if not reasons:
        return ServerHealth(server, ANSWERING, ("every name answered correctly over UDP and TCP",), **common)
    if responses or tcp_port_open:
        if not responses:
            reasons.insert(0, "TCP port accepts connections but no DNS answer came (hung or overloaded)")
        return ServerHealth(server, FAILING, tuple(reasons[:MAX_REASONS]), **common)
    errors = sorted({str(o.get("error") or o.get("status")) for o in outcomes})[:3]
    return ServerHealth(
        server, UNREACHABLE, (f"no DNS response and the TCP port is closed ({'; '.join(errors)})",), **common
    )


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
