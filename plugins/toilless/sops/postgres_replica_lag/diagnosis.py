"""Per replica: how far behind (seconds, bytes), why, what a person should do, and which of the two allowed actions
(resume a paused replay, cancel the query holding replay) applies. Pure, no Airflow.

Lag in seconds is the time since the last replayed commit, but only while the replica has not replayed everything
the primary wrote: an idle primary makes ``now() - pg_last_xact_replay_timestamp()`` grow without any lag, and the
primary's ``replay_lag`` keeps its last sample while replay is stuck.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

OK, WARNING, CRITICAL, UNKNOWN = "ok", "warning", "critical", "unknown"
PAUSED = "replay_paused"
BLOCKED = "replay_blocked_by_query"
RECEIVE = "network_or_receive_side"
REPLAY_SLOW = "replay_slow"
DISK = "disk"
NOT_A_REPLICA = "not_a_replica"
UNREACHABLE = "unreachable"
OWN_PREFIX = "toilless"


def match_replication_row(replica: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The primary's pg_stat_replication row for ``replica``: by its application_name, else the only row."""
    wanted = replica.get("application_name")
    if wanted:
        return next((row for row in rows if row.get("application_name") == wanted), None)
    return rows[0] if len(rows) == 1 else None


def lsn_bytes(lsn: str | None) -> int | None:
    """A WAL position ``"16/B374D848"`` as a byte offset (None if unreadable)."""
    try:
        high, low = str(lsn).split("/")
        return (int(high, 16) << 32) + int(low, 16)
    except (ValueError, AttributeError):
        return None


def diagnose_replica(
    replica: Mapping[str, Any],
    observed: Mapping[str, Any],
    primary_row: Mapping[str, Any] | None,
    settings: Mapping[str, Any],
    *,
    primary_flush_lsn: str | None = None,
) -> dict[str, Any]:
    """The verdict for one replica from what was read on it (``observed``) and on the primary (``primary_row``, and
    the primary's flushed WAL position, which counts the bytes behind even when the primary lists no walsender)."""
    result: dict[str, Any] = {
        "name": replica["name"],
        "conn_id": replica["conn_id"],
        "lag_seconds": None,
        "lag_bytes": None,
        "level": UNKNOWN,
        "causes": [],
        "evidence": [],
        "recommendations": [],
        "actions": [],
    }
    if observed.get("error"):
        result["causes"].append(UNREACHABLE)
        result["evidence"].append(f"cannot read the replica: {observed['error']}")
        result["recommendations"].append(
            "check that the replica runs and accepts connections; no automatic failover: a person decides"
        )
        _primary_evidence(result, primary_row)
        return result
    if not observed.get("in_recovery"):
        result["causes"].append(NOT_A_REPLICA)
        result["evidence"].append(
            "the server is not in recovery: it is not a replica (promoted, or the wrong Connection)"
        )
        result["recommendations"].append("check the replicas list in the configuration; was this replica promoted?")
        return result
    status = observed["status"]
    unreplayed = int(status.get("unreplayed_bytes") or 0)
    behind = unreplayed
    if primary_row and primary_row.get("replay_behind_bytes") is not None:
        behind = int(primary_row["replay_behind_bytes"])
    elif primary_flush_lsn is not None:
        primary_at, replayed_at = lsn_bytes(primary_flush_lsn), lsn_bytes(status.get("replay_lsn"))
        if primary_at is not None and replayed_at is not None:
            behind = max(unreplayed, primary_at - replayed_at)
    since_replay = status.get("since_last_replay_seconds")
    if primary_row is None and since_replay is not None:
        # Disconnected from the primary: the replica cannot know what it misses; the time since its last replayed
        # commit is the bound (an idle primary makes it too high, which is the safe side for a lost replica).
        lag = max(0.0, float(since_replay))
    elif behind <= 0 and unreplayed <= 0:
        lag = 0.0
    elif since_replay is not None:
        lag = max(0.0, float(since_replay))
    elif primary_row and primary_row.get("replay_lag_seconds") is not None:
        lag = float(primary_row["replay_lag_seconds"])
    else:
        lag = None
    result["lag_seconds"] = None if lag is None else round(lag, 1)
    result["lag_bytes"] = max(behind, unreplayed)
    if lag is None:
        result["level"] = UNKNOWN
    elif lag >= settings["critical_seconds"]:
        result["level"] = CRITICAL
    elif lag >= settings["warning_seconds"]:
        result["level"] = WARNING
    else:
        result["level"] = OK
    _primary_evidence(result, primary_row)
    result["evidence"].append(
        f"replica: received {status.get('receive_lsn')}, replayed {status.get('replay_lsn')} "
        f"({unreplayed:,} bytes received but not replayed); last replayed commit "
        f"{_seconds(since_replay)} ago"
    )
    receiver = observed.get("receiver")
    lagging = result["level"] in (WARNING, CRITICAL) or (lag is None and behind > 0)
    if status.get("replay_paused"):
        result["causes"].append(PAUSED)
        result["evidence"].append("WAL replay is paused (pg_wal_replay_pause() was called on the replica)")
        result["recommendations"].append("resume replay (pg_wal_replay_resume()) unless someone paused it on purpose")
        if settings["resume_paused_replay"] and lag is not None and lag >= settings["action_min_lag_seconds"]:
            result["actions"].append({"kind": "resume", "replica": replica["name"], "conn_id": replica["conn_id"]})
    blockers = [row for row in observed.get("blockers", []) if row.get("pid") is not None]
    wait = observed.get("startup_wait") or {}
    if blockers and not status.get("replay_paused"):
        result["causes"].append(BLOCKED)
        result["evidence"].append(
            f"replay (startup process) waits on {wait.get('type') or '?'}/{wait.get('event') or '?'}; "
            f"held by {len(blockers)} query(ies) on the replica"
        )
        for blocker in blockers[:5]:
            result["evidence"].append(
                f"  pid {blocker['pid']} ({blocker.get('application_name') or '(none)'}, {blocker.get('usename')}), "
                f"{blocker.get('conflict')} conflict, running {_seconds(blocker.get('query_seconds'))}: {blocker.get('query')}"
            )
        result["recommendations"].append(
            f"cancel the query holding replay; with max_standby_streaming_delay = "
            f"{status.get('max_standby_streaming_delay')} replay waits "
            + ("forever" if str(status.get("max_standby_streaming_delay")) == "-1" else "that long")
            + "; for long reports on the replica consider hot_standby_feedback = on (now "
            f"{status.get('hot_standby_feedback')}) or a replica of their own"
        )
        if settings["cancel_blocking_queries"] and lag is not None and lag >= settings["action_min_lag_seconds"]:
            for blocker in blockers:
                if str(blocker.get("application_name") or "").lower().startswith(OWN_PREFIX):
                    continue
                if float(blocker.get("query_seconds") or 0) < settings["min_blocking_query_seconds"]:
                    continue
                result["actions"].append(
                    {
                        "kind": "cancel",
                        "replica": replica["name"],
                        "conn_id": replica["conn_id"],
                        "pid": int(blocker["pid"]),
                        "backend_start": blocker["backend_start"],
                        "query_start": blocker["query_start"],
                        "application_name": blocker.get("application_name"),
                        "usename": blocker.get("usename"),
                        "query_seconds": blocker.get("query_seconds"),
                    }
                )
    receiving_problem = _receive_problem(receiver, primary_row, settings)
    if receiving_problem:
        result["causes"].append(RECEIVE)
        result["evidence"].append(receiving_problem)
        result["recommendations"].append(
            "network / receive side: check the network between replica and primary, primary_conninfo, the primary's "
            "max_wal_senders and the replication slot; if the primary already removed WAL the replica needs, rebuild "
            "it (pg_basebackup). Restarting replication is a person's call"
        )
        if behind > 0:
            # No WAL arrives: the replica only falls further behind; it will not catch up by itself.
            result["level"] = CRITICAL
            result["evidence"].append(
                f"WAL is not arriving and the replica is {behind:,} bytes behind the primary's flushed WAL"
            )
            lagging = True
    if lagging and not result["causes"] and unreplayed > 0:
        result["causes"].append(REPLAY_SLOW)
        result["recommendations"].append(
            "replay is behind with nothing holding it: the replica's disk I/O or CPU cannot keep up; check its load"
        )
    disk = observed.get("disk")
    if disk and disk.get("error"):
        result["evidence"].append(f"free disk: not measured ({disk['error']})")
    elif disk and disk.get("free_pct") is not None:
        result["evidence"].append(
            f"free disk of the data directory: {disk['free_pct']} % ({disk['free_bytes']:,} bytes)"
        )
        if disk["free_pct"] < settings["disk_min_free_pct"]:
            result["causes"].append(DISK)
            result["recommendations"].append(
                f"the replica's data directory has {disk['free_pct']} % free (< {settings['disk_min_free_pct']:g} %): "
                "grow the volume or free WAL; a full disk stops replay"
            )
    if lagging or result["causes"]:
        result["recommendations"].append(
            "no automatic failover: fail over only if the primary is lost; "
            + (
                f"this replica is {result['lag_seconds']} s behind and would lose that much if promoted now"
                if result["lag_seconds"]
                else "check how far behind the candidate is first"
            )
        )
    return result


def _primary_evidence(result: dict[str, Any], row: Mapping[str, Any] | None) -> None:
    if row is None:
        result["evidence"].append("primary: no pg_stat_replication row for this replica (not connected)")
        return
    result["evidence"].append(
        f"primary: state {row.get('state')}, {row.get('sync_state')}; sent {row.get('sent_lsn')}, replayed "
        f"{row.get('replay_lsn')} ({int(row.get('sent_not_replayed_bytes') or 0):,} bytes sent but not replayed, "
        f"{int(row.get('unsent_bytes') or 0):,} not yet sent); lag write {_seconds(row.get('write_lag_seconds'))}, "
        f"flush {_seconds(row.get('flush_lag_seconds'))}, replay {_seconds(row.get('replay_lag_seconds'))}"
    )


def _receive_problem(
    receiver: Mapping[str, Any] | None, primary_row: Mapping[str, Any] | None, settings: Mapping[str, Any]
) -> str | None:
    if receiver is None:
        return "the WAL receiver is not running on the replica (no pg_stat_wal_receiver row)"
    if receiver.get("status") != "streaming":
        return f"the WAL receiver is {receiver.get('status')!r}, not streaming"
    silence = receiver.get("last_message_age_seconds")
    if silence is not None and float(silence) > settings["receiver_silence_seconds"]:
        return f"no message from the primary for {_seconds(silence)} (receiver_silence_seconds {settings['receiver_silence_seconds']:g})"
    if primary_row is None:
        return "the primary lists no walsender for this replica"
    if primary_row.get("state") != "streaming":
        return f"the primary's walsender is {primary_row.get('state')!r}, not streaming"
    return None


def overall_level(results: Sequence[Mapping[str, Any]]) -> str:
    levels = [result["level"] for result in results]
    for level in (CRITICAL, WARNING, UNKNOWN):
        if level in levels:
            return level
    return OK


def _seconds(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{float(value):.1f} s"
