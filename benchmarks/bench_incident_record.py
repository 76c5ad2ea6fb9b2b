"""The incident record on SQLite (``make run``'s store): writing 10,000 events through ``record()`` one at a time
(each its own transaction, the gate's and report helpers' path) and in intake-sized batches; the same 10,000 with
the database away (all to the outbox) and the drain that writes them back; and building the weekly handoff from a
week of 5,000 incidents (25,000 events): reading the week + building the document, time and tracemalloc peak.
"""

from __future__ import annotations

import os
import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EVENTS = 10_000
INCIDENTS = 5_000
#: record() may never hold a runbook: per-event cost on the local store.
PER_EVENT_GOAL_MS = 10.0
HANDOFF_GOAL_S = 30.0
HANDOFF_MEMORY_GOAL_MB = 200.0


def _use(url: str, outbox: Path) -> None:
    from toilless.incidents import db

    os.environ[db.URL_ENV] = url
    os.environ["TOILLESS_INCIDENT_OUTBOX_DIR"] = str(outbox)
    db.reset()


def run(work: Path) -> list[dict[str, Any]]:
    from toilless.incidents import db, flush_outbox, outbox, record, store
    from toilless.incidents import events as ev
    from toilless.incidents.recorder import record_events
    from toilless.sops.oncall_handoff.handoff import build

    rows: list[dict[str, Any]] = []
    _use(f"sqlite:///{work / 'incidents.db'}", work / "outbox")
    kinds = [ev.GATE_VERDICT, ev.ACTION, ev.MESSAGE_SENT, ev.APPROVAL]
    started = time.perf_counter()
    for index in range(EVENTS):
        record(kinds[index % 4], incident_id=f"{index % 500:04x}", summary=f"event {index}", data={"n": index})
    single = time.perf_counter() - started
    rows.append(
        {
            "benchmark": "incident_record",
            "metric": f"record() {EVENTS:,} events one by one (SQLite, one transaction each)",
            "value": f"{single:.1f} s ({single / EVENTS * 1000:.2f} ms/event)",
            "goal": f"< {PER_EVENT_GOAL_MS:g} ms/event",
            "met": single / EVENTS * 1000 < PER_EVENT_GOAL_MS,
            "notes": "500 incidents; WAL, synchronous=NORMAL",
        }
    )
    batch = [ev.make_event(f"b{index % 500:04x}", ev.ACTION, summary=f"e{index}") for index in range(EVENTS)]
    started = time.perf_counter()
    for start in range(0, EVENTS, 100):
        record_events(batch[start : start + 100])
    batched = time.perf_counter() - started
    rows.append(
        {
            "benchmark": "incident_record",
            "metric": f"record_events() {EVENTS:,} events in batches of 100 (the intake's path)",
            "value": f"{batched:.2f} s ({EVENTS / batched:,.0f} events/s)",
            "goal": "-",
            "met": None,
            "notes": "",
        }
    )
    # Database away: every event to the outbox (fsync per write), then drained back.
    _use("postgresql+psycopg2://x:y@127.0.0.1:9/none", work / "outbox")
    started = time.perf_counter()
    for index in range(EVENTS):
        record(ev.ACTION, incident_id=f"c{index % 500:04x}", summary=f"outboxed {index}")
    away = time.perf_counter() - started
    waiting = outbox.pending()
    _use(f"sqlite:///{work / 'incidents.db'}", work / "outbox")
    started = time.perf_counter()
    counts = flush_outbox()
    drain = time.perf_counter() - started
    rows.append(
        {
            "benchmark": "incident_record",
            "metric": f"{EVENTS:,} events with the database away, then drained",
            "value": f"{away:.1f} s to the outbox ({away / EVENTS * 1000:.2f} ms/event); drain {drain:.2f} s",
            "goal": "0 lost",
            "met": waiting == EVENTS and counts["written"] == EVENTS and outbox.pending() == 0,
            "notes": f"outbox held {waiting:,}; drain wrote {counts['written']:,}",
        }
    )

    # A week of 5,000 incidents, ~5 events each.
    _use(f"sqlite:///{work / 'week.db'}", work / "outbox2")
    engine = db.engine()
    week_start = datetime(2026, 11, 23, tzinfo=UTC)
    rng = random.Random(18)
    seeded = []
    for index in range(INCIDENTS):
        incident_id = f"{index:05x}"
        opened = week_start + timedelta(seconds=rng.randrange(7 * 86400))
        name = f"Alert{int(rng.paretovariate(1.2)) % 60}"
        seeded.append(
            ev.make_event(
                incident_id,
                ev.ALERT_RECEIVED,
                at=opened,
                data={"alertname": name, "severity": rng.choice(["P0", "P1", "P2", "P2", "P3"]), "service": "svc"},
            )
        )
        seeded.append(
            ev.make_event(incident_id, ev.GATE_VERDICT, at=opened + timedelta(minutes=2), data={"allowed": True})
        )
        seeded.append(ev.make_event(incident_id, ev.ACTION, at=opened + timedelta(minutes=3), summary="restarted: ok"))
        if rng.random() < 0.8:
            seeded.append(
                ev.make_event(
                    incident_id, ev.ACKNOWLEDGED, at=opened + timedelta(minutes=rng.randrange(1, 30)), actor="alice"
                )
            )
        if rng.random() < 0.9:
            seeded.append(
                ev.make_event(incident_id, ev.ALERT_RESOLVED, at=opened + timedelta(minutes=rng.randrange(5, 600)))
            )
    for start in range(0, len(seeded), 2000):
        store.write_events(engine, seeded[start : start + 2000])
    week_end = week_start + timedelta(days=7)
    tracemalloc.start()
    started = time.perf_counter()
    incidents = store.incidents_between(engine, week_start.timestamp(), week_end.timestamp())
    timelines = store.timelines(engine, [item["incident_id"] for item in incidents[:300]])
    handoff = build(
        incidents,
        timelines,
        week_start=week_start,
        week_end=week_end,
        open_incidents=store.open_incidents(engine),
    )
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rows.append(
        {
            "benchmark": "incident_record",
            "metric": f"handoff from a week of {INCIDENTS:,} incidents ({len(seeded):,} events)",
            "value": f"{seconds:.2f} s, peak {peak:.0f} MB (tracemalloc), {len(handoff.markdown) / 1024:.0f} KiB document",
            "goal": f"< {HANDOFF_GOAL_S:g} s, < {HANDOFF_MEMORY_GOAL_MB:g} MB",
            "met": seconds < HANDOFF_GOAL_S and peak < HANDOFF_MEMORY_GOAL_MB and handoff.incidents == INCIDENTS,
            "notes": f"{len(handoff.recurring)} recurring alerts ranked; log shows 300 entries, counts the rest",
        }
    )
    db.reset()
    return rows
