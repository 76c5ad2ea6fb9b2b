"""CLIENT LIST: parsed (bounded), grouped, and who may be ended.

``CLIENT LIST`` answers one line per connection, ``key=value`` fields separated by spaces
(``id=7 addr=10.0.0.5:51234 laddr=... fd=9 name=billing age=300 idle=290 flags=N db=0 ... cmd=get ...``). A client
name cannot hold spaces (CLIENT SETNAME refuses them), so splitting on spaces is exact for the fields used here.

Pure: the text comes in as bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: Flags of connections never ended: M master, S replica, O monitor, b blocked (waiting in BLPOP & co: working, not
#: idle), P pub/sub subscriber (idle by design), x inside MULTI.
PROTECTED_FLAGS = frozenset("MSObPx")
#: Idle-time buckets for grouping: (upper bound in seconds, label).
IDLE_BUCKETS = ((10, "< 10 s"), (60, "10 s - 1 min"), (600, "1 - 10 min"), (3600, "10 min - 1 h"))
UNNAMED = "(no name)"
MAX_FIELD = 128


@dataclass(frozen=True)
class Client:
    id: int
    name: str
    addr: str
    idle: int
    age: int
    flags: str
    cmd: str

    @property
    def host(self) -> str:
        """The address without its port (``10.0.0.5:51234`` -> ``10.0.0.5``; IPv6 ``[::1]:5`` -> ``[::1]``)."""
        host, _, port = self.addr.rpartition(":")
        return host if host and port.isdigit() else self.addr

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fields(line: str) -> dict[str, str]:
    fields = {}
    for part in line.split(" "):
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = value[:MAX_FIELD]
    return fields


def parse_client_list(raw: bytes, *, limit: int) -> tuple[list[Client], int]:
    """At most ``limit`` clients from CLIENT LIST, and how many lines there were in all."""
    clients = []
    total = 0
    for line in raw.decode("utf-8", "backslashreplace").splitlines():
        if not line.strip():
            continue
        total += 1
        if len(clients) >= limit:
            continue
        fields = _fields(line)
        try:
            clients.append(
                Client(
                    id=int(fields["id"]),
                    name=fields.get("name", ""),
                    addr=fields.get("addr", ""),
                    idle=int(fields.get("idle", "0")),
                    age=int(fields.get("age", "0")),
                    flags=fields.get("flags", ""),
                    cmd=fields.get("cmd", ""),
                )
            )
        except (KeyError, ValueError):
            continue  # a line this parser does not understand is left out, not guessed
    return clients, total


def idle_bucket(idle: int) -> str:
    for bound, label in IDLE_BUCKETS:
        if idle < bound:
            return label
    return ">= 1 h"


def group(clients: Iterable[Client], *, top: int) -> dict[str, list[tuple[str, int]]]:
    """Connections per client name, per host, per idle-time bucket and per last command: the ``top`` of each."""
    by_name: Counter[str] = Counter()
    by_host: Counter[str] = Counter()
    by_idle: Counter[str] = Counter()
    by_cmd: Counter[str] = Counter()
    for client in clients:
        by_name[client.name or UNNAMED] += 1
        by_host[client.host] += 1
        by_idle[idle_bucket(client.idle)] += 1
        by_cmd[client.cmd or "?"] += 1
    return {
        "name": by_name.most_common(top),
        "host": by_host.most_common(top),
        "idle": by_idle.most_common(),
        "command": by_cmd.most_common(top),
    }


def idle_per_name(clients: Iterable[Client], idle_seconds: int) -> dict[str, dict[str, int]]:
    """Per client name: connections, and how many have been idle at least ``idle_seconds``."""
    found: dict[str, dict[str, int]] = {}
    for client in clients:
        row = found.setdefault(client.name or UNNAMED, {"connections": 0, "idle": 0})
        row["connections"] += 1
        row["idle"] += int(client.idle >= idle_seconds)
    return found


def why_not(client: Client, *, names: Sequence[str], idle_seconds: int, own_id: int) -> str | None:
    """Why ``client`` may not be ended, or None if it may."""
    if client.id == own_id:
        return "Toilless's own connection"
    if client.name.lower().startswith("toilless"):
        return "a Toilless connection"
    if not client.name or client.name not in names:
        return "client name not configured"
    protected = PROTECTED_FLAGS & set(client.flags)
    if protected:
        return f"flags {''.join(sorted(protected))} (replica, monitor, blocked, subscriber or in MULTI)"
    if client.idle < idle_seconds:
        return f"idle {client.idle} s, under {idle_seconds} s"
    return None


def choose_idle(clients: Iterable[Client], *, names: Sequence[str], idle_seconds: int, own_id: int) -> list[Client]:
    """The connections that may be ended, longest idle first."""
    chosen = [
        client for client in clients if why_not(client, names=names, idle_seconds=idle_seconds, own_id=own_id) is None
    ]
    return sorted(chosen, key=lambda client: (-client.idle, client.id))


#: Connections authorised (budget + gate) together.
BATCH = 10
MAX_LISTED = 50


def end_idle(
    chosen: Sequence[Client],
    *,
    authorize: Any,
    recheck: Any,
    kill: Any,
    settle: Any,
    eligible: Any,
) -> dict[str, Any]:
    """End the chosen connections in batches; each one re-read (``recheck(id) -> Client | None``) right before.

    ``authorize(count) -> (allowed, reason)``: 0 stops (dry run, gate, budget). ``eligible(client) -> reason | None``
    decides again on the fresh reading: a connection that was used, renamed or closed meanwhile is left alone.
    Not settled when ``kill`` fails: a lost answer still counts as spent.
    """
    ended: list[dict[str, Any]] = []
    ended_count = 0
    left_alone = 0
    refused: str | None = None
    pending = list(chosen)
    while pending:
        requested = min(BATCH, len(pending))
        allowed, reason = authorize(requested)
        if allowed <= 0:
            refused = reason
            break
        batch, pending = pending[:allowed], pending[allowed:]
        done = 0
        for client in batch:
            fresh = recheck(client.id)
            if fresh is None or eligible(fresh) is not None:
                left_alone += 1
                continue
            if kill(client.id):
                done += 1
                if len(ended) < MAX_LISTED:
                    ended.append({"id": fresh.id, "name": fresh.name, "host": fresh.host, "idle": fresh.idle})
            else:
                left_alone += 1
        settle(len(batch), done)
        ended_count += done
        if allowed < requested:
            refused = reason
            break
    return {
        "chosen": len(chosen),
        "ended": ended,
        "ended_count": ended_count,
        "left_alone": left_alone,
        "refused": refused,
    }
