"""postgres_connections' pure judgement: settings, which session may be ended, query text, chains, pool advice."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.common.config import LooseningParamError, read_defaults
from toilless.sops.postgres_connections import advice, settings
from toilless.sops.postgres_connections.blocking import blocking_chains
from toilless.sops.postgres_connections.sessions import Session, ending_refusal, plan_terminations, shorten_query


def _config(**overrides: Any) -> dict[str, Any]:
    return {**read_defaults("postgres_connections"), "allowed_applications": ["checkout"], **overrides}


@pytest.mark.parametrize(
    ("overrides", "params", "fragment"),
    [
        pytest.param(
            {"idle_in_transaction_seconds": 0}, {}, "idle_in_transaction_seconds must be above 0", id="threshold-0"
        ),
        pytest.param({"long_query_seconds": -1}, {}, "long_query_seconds must be above 0", id="threshold-negative"),
        pytest.param({"idle_seconds": "soon"}, {}, "idle_seconds must be a number", id="threshold-text"),
        pytest.param(
            {"max_terminations_per_run": 0},
            {},
            "max_terminations_per_run must be a whole number of at least 1",
            id="cap-0",
        ),
        pytest.param({"max_terminations_per_run": -3}, {}, "must be a whole number of at least 1", id="cap-negative"),
        pytest.param({"max_terminations_per_run": 2.5}, {}, "whole number", id="cap-fraction"),
        pytest.param(
            {},
            {"max_terminations": 0},
            "max_terminations_per_run must be a whole number of at least 1",
            id="param-cap-0",
        ),
        pytest.param({"allowed_applications": ["*"]}, {}, "no wildcards", id="allow-list-star"),
        pytest.param({"allowed_applications": [""]}, {}, "not one exact application_name", id="allow-list-empty-name"),
        pytest.param({"allowed_applications": "checkout"}, {}, "must be a list", id="allow-list-not-a-list"),
        pytest.param({"allowed_applications": ["toilless_x"]}, {}, "Toilless's own name", id="allow-list-toilless"),
        pytest.param({"postgres_conn_id": ""}, {}, "postgres_conn_id must be", id="conn-id-empty"),
        pytest.param(
            {"pools": {"checkout": 0}}, {}, "pools.checkout must be a whole number of at least 1", id="pool-0"
        ),
        pytest.param(
            {"warning_usage_pct": 95, "critical_usage_pct": 90},
            {},
            "warning_usage_pct must not be above",
            id="pct-order",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(
    overrides: dict[str, Any], params: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(settings.SettingsError, match=fragment):
        settings.resolve(_config(**overrides), params)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"max_terminations": 10}, id="higher-cap"),
        pytest.param({"idle_in_transaction_seconds": 1}, id="shorter-age"),
        pytest.param({"end_idle": True}, id="idle-on"),
    ],
)
def test_params_never_loosen_the_policy(params: dict[str, Any]) -> None:
    with pytest.raises(LooseningParamError):
        settings.resolve(_config(), params)


def test_params_may_tighten() -> None:
    resolved = settings.resolve(_config(), {"max_terminations": 2, "end_sessions": False, "dry_run": True})
    assert resolved["max_terminations_per_run"] == 2
    assert resolved["end_sessions"] is False
    assert resolved["dry_run"] is True


def _session(**fields: Any) -> Session:
    base = {
        "pid": 100,
        "backend_start": "2026-01-01T00:00:00+00:00",
        "state": "idle in transaction",
        "state_change": "2026-01-01T00:00:01+00:00",
        "backend_type": "client backend",
        "usename": "app_user",
        "application_name": "checkout",
        "client": "10.0.0.1",
        "superuser": False,
        "replication_role": False,
        "state_seconds": 3600.0,
        "query": "SELECT 1",
    }
    return Session.from_row({**base, **fields})


SETTINGS = settings.resolve(_config(end_idle=True, idle_seconds=600), {})


@pytest.mark.parametrize(
    ("fields", "own_pid", "refused"),
    [
        pytest.param({}, 1, None, id="eligible-idle-in-transaction"),
        pytest.param({"state": "idle in transaction (aborted)"}, 1, None, id="eligible-aborted-transaction"),
        pytest.param({"state": "idle"}, 1, None, id="eligible-idle-when-configured"),
        pytest.param({"pid": 7}, 7, "own session", id="own-pid"),
        pytest.param({"application_name": "toilless_postgres_connections"}, 1, "own session", id="own-name"),
        pytest.param({"backend_type": "walsender"}, 1, "walsender", id="walsender"),
        pytest.param({"backend_type": "autovacuum worker"}, 1, "autovacuum worker", id="autovacuum"),
        pytest.param({"superuser": True}, 1, "superuser", id="superuser"),
        pytest.param({"replication_role": True}, 1, "REPLICATION", id="replication-role"),
        pytest.param({"application_name": "billing"}, 1, "allow-list", id="not-allow-listed"),
        pytest.param({"application_name": ""}, 1, "allow-list", id="no-application-name"),
        pytest.param({"application_name": "Checkout"}, 1, "allow-list", id="case-differs"),
        pytest.param({"state_seconds": 10.0}, 1, "under 600 s", id="too-young"),
        pytest.param({"state": "active"}, 1, "only idle-in-transaction", id="active"),
    ],
)
def test_which_session_may_be_ended(fields: dict[str, Any], own_pid: int, refused: str | None) -> None:
    reason = ending_refusal(_session(**fields), SETTINGS, own_pid=own_pid)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert refused in reason


def test_idle_sessions_are_kept_unless_configured() -> None:
    strict = settings.resolve(_config(), {})
    assert "end_idle is off" in (ending_refusal(_session(state="idle"), strict, own_pid=1) or "")


def test_plan_takes_the_oldest_first_and_never_more_than_the_room_left() -> None:
    sessions = [_session(pid=pid, state_seconds=1000.0 + pid) for pid in range(1, 9)]
    plan = plan_terminations(sessions, {**SETTINGS, "max_terminations_per_run": 5}, own_pid=0, already_ended=2)
    assert [session.pid for session in plan.to_end] == [8, 7, 6]
    assert len(plan.over_cap) == 5


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        pytest.param("SELECT * FROM users WHERE email = 'a@b.example'", "email = ?", "a@b.example", id="string"),
        pytest.param("UPDATE cards SET n = 4111111111111111", "n = ?", "4111", id="number"),
        pytest.param("ALTER ROLE x PASSWORD 'hunter2'", "PASSWORD ?", "hunter2", id="password"),
        pytest.param("SELECT $body$secret$body$", "$?$", "secret", id="dollar-quoted"),
        pytest.param("SELECT 'it''s'", "SELECT ?", "it", id="escaped-quote"),
        pytest.param("SELECT\n\n   1  FROM   t2", "SELECT ? FROM t2", "\n", id="whitespace-keeps-identifiers"),
    ],
)
def test_query_text_is_shortened_and_its_values_redacted(query: str, shown: str, hidden: str) -> None:
    text = shorten_query(query, 200)
    assert shown in text
    assert hidden not in text


def test_query_text_is_bounded() -> None:
    assert len(shorten_query("SELECT " + "x, " * 1000, 50)) == 50


def test_blocking_chains_find_the_root_and_count_everyone_behind_it() -> None:
    rows = [
        {"pid": 1, "blocked_by": [], "state": "idle in transaction", "query": "UPDATE t"},
        {"pid": 2, "blocked_by": [1]},
        {"pid": 3, "blocked_by": [2]},
        {"pid": 4, "blocked_by": [1]},
        {"pid": 10, "blocked_by": [11]},
        {"pid": 11, "blocked_by": [10]},
    ]
    chains = blocking_chains(rows)
    assert chains[0]["pid"] == 1
    assert chains[0]["waiting"] == 3
    assert chains[0]["depth"] == 2
    assert chains[0]["direct"] == 2
    # A cycle (deadlock before the detector runs) is still reported, once.
    assert [chain["pid"] for chain in chains[1:]] == [10]


def test_usage_counts_against_the_slots_left_after_the_reserved_ones() -> None:
    used = advice.usage(
        {"max_connections": 100, "superuser_reserved_connections": 3, "reserved_connections": 7},
        81,
        {"warning_usage_pct": 80, "critical_usage_pct": 90},
    )
    assert used["available_to_ordinary_roles"] == 90
    assert used["used_pct"] == 90.0
    assert used["level"] == "critical"
    assert used["free_slots"] == 9


@pytest.mark.parametrize(
    ("states", "pool", "expected"),
    [
        pytest.param({"active": 5, "idle": 30}, 20, "more than its pool", id="over-pool"),
        pytest.param({"active": 2, "idle in transaction": 5, "idle": 3}, 20, "transactions left open", id="leak"),
        pytest.param({"active": 19, "idle": 1}, 20, "pool saturated", id="saturated"),
        pytest.param({"active": 1, "idle": 15}, 20, "could shrink", id="oversized"),
        pytest.param({"active": 5, "idle": 5}, 20, "fits", id="fits"),
    ],
)
def test_pool_advice(states: dict[str, int], pool: int, expected: str) -> None:
    [item] = advice.pool_advice({"checkout": states}, {"checkout": pool}, free_slots=10)
    assert expected in item["advice"]


def test_pools_adding_up_to_more_than_the_server_has_are_flagged() -> None:
    assert "PgBouncer" in (advice.pools_vs_capacity({"a": 60, "b": 50}, 97) or "")
    assert advice.pools_vs_capacity({"a": 10}, 97) is None


def test_report_escapes_everything_the_server_says() -> None:
    from toilless.sops.postgres_connections import messages

    hostile = "<!channel> <https://evil.example|click> &"
    session = {**_session(application_name=hostile, usename=hostile).as_dict(), "query": hostile}
    diagnosis = {
        "usage": advice.usage({"max_connections": 10, "superuser_reserved_connections": 3}, 7, SETTINGS),
        "breakdown": advice.breakdowns(
            [
                {
                    "state": "idle",
                    "application": hostile,
                    "usename": hostile,
                    "client": hostile,
                    "age": "< 1 min",
                    "sessions": 7,
                }
            ]
        ),
        "long_queries": [],
        "long_queries_total": 0,
        "idle_in_transaction": [session],
        "idle_in_transaction_total": 1,
        "chains": [
            {
                "pid": 1,
                "waiting": 1,
                "depth": 1,
                "state": hostile,
                "usename": hostile,
                "application_name": hostile,
                "query": hostile,
            }
        ],
        "over_cap": 0,
        "refused_counts": {},
        "pools": [],
    }
    outcome = {
        "results": [{"pid": 1, "status": "ended", "application_name": hostile, "usename": hostile, "reason": hostile}]
    }
    report = messages.report({**SETTINGS, "notes": []}, diagnosis, outcome)
    text = "\n".join(report["lines"])
    assert "<!channel>" not in text
    assert "<https://evil" not in text
    assert "&lt;!channel&gt;" in text


@pytest.mark.parametrize(
    ("run_type", "usage_sessions", "posted"),
    [
        pytest.param("scheduled", 1, False, id="scheduled-and-quiet"),
        pytest.param("manual", 1, True, id="manual-always-reports"),
        pytest.param("scheduled", 9, True, id="scheduled-over-threshold-reports"),
    ],
)
def test_a_scheduled_run_with_nothing_to_say_stays_quiet(
    monkeypatch: pytest.MonkeyPatch, run_type: str, usage_sessions: int, posted: bool
) -> None:
    from types import SimpleNamespace

    from toilless.sops.postgres_connections import steps

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(steps, "send_report", lambda context, **kwargs: sent.append(kwargs) or {"posted": True})
    diagnosis = {
        "usage": advice.usage({"max_connections": 13, "superuser_reserved_connections": 3}, usage_sessions, SETTINGS),
        "breakdown": advice.breakdowns([]),
        "long_queries": [],
        "long_queries_total": 0,
        "idle_in_transaction": [],
        "idle_in_transaction_total": 0,
        "chains": [],
        "over_cap": 0,
        "refused_counts": {},
        "pools": [],
    }
    context = {"dag_run": SimpleNamespace(run_type=run_type)}
    steps.report_connections(context, {**SETTINGS, "notes": []}, diagnosis, {"results": []})
    assert bool(sent) is posted


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        pytest.param({"superuser": True}, "superusers", id="superuser"),
        pytest.param({"backend_type": "walsender"}, "replication and other server processes", id="walsender"),
        pytest.param({"application_name": "billing"}, "applications not on the allow-list", id="allow-list"),
        pytest.param({"state_seconds": 1.0}, "younger than the configured age", id="young"),
        pytest.param({"application_name": "toilless_x"}, "Toilless's own sessions", id="own"),
    ],
)
def test_refusals_are_reported_by_kind_not_one_line_per_session(fields: dict[str, Any], kind: str) -> None:
    from toilless.sops.postgres_connections.sessions import refusal_kind

    reason = ending_refusal(_session(**fields), SETTINGS, own_pid=1)
    assert reason is not None
    assert refusal_kind(reason) == kind
