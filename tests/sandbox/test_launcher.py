from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.launcher import admin_password, airflow_environment, read_env_file
from sandbox.services import discover


def test_env_file_parsing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# real connections\n"
        'export AIRFLOW_CONN_AWS_DEFAULT=\'{"conn_type": "aws"}\'\n'
        'AIRFLOW_VAR_X="quoted value"\n'
        "\n"
        "PLAIN=a=b\n"
    )
    assert read_env_file(env) == {
        "AIRFLOW_CONN_AWS_DEFAULT": '{"conn_type": "aws"}',
        "AIRFLOW_VAR_X": "quoted value",
        "PLAIN": "a=b",
    }
    assert read_env_file(tmp_path / "missing") == {}


def test_env_file_with_a_bad_line_is_an_error(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("GOOD=1\nno equals sign here\n")
    with pytest.raises(ValueError, match=r"\.env:2"):
        read_env_file(env)


def test_admin_password_is_made_once_and_kept(tmp_path: Path) -> None:
    first = admin_password(tmp_path)
    assert len(first) >= 12
    assert admin_password(tmp_path) == first
    assert (tmp_path / "admin-password").stat().st_mode & 0o077 == 0


def test_airflow_environment_is_loopback_only_and_uses_the_repo(tmp_path: Path) -> None:
    env = airflow_environment(tmp_path, 18080, "pw", {"PATH": "/usr/bin"})
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")
    assert json.loads((tmp_path / "passwords.json").read_text()) == {"admin": "pw"}


def test_sandbox_services_are_discovered_servers_first() -> None:
    services = discover()
    names = [service.name for service in services]
    assert {"slack", "aws"} <= set(names)
    orders = [service.order for service in services]
    assert orders == sorted(orders)
    assert all(service.name for service in services)


def test_sqlite_metadata_db_uses_write_ahead_logging_so_readers_never_wait_for_a_writer(tmp_path: Path) -> None:
    import sqlite3

    from sandbox.launcher import use_write_ahead_log

    database = tmp_path / "airflow.db"
    sqlite3.connect(database).execute("CREATE TABLE t (x)").connection.close()

    assert use_write_ahead_log(database) == "wal"
    writer = sqlite3.connect(database, isolation_level=None)
    reader = sqlite3.connect(database, timeout=0.1)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    # A reader is answered while a write transaction is open (the rollback journal would lock it out once the
    # writer commits its pages; WAL never does), and sees the last committed state.
    assert reader.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    writer.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM t").fetchone() == (1,)
    # The mode is kept in the file: every Airflow component opening it later uses it.
    assert sqlite3.connect(database).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_second_ctrl_c_cannot_abort_the_clean_up() -> None:
    import signal

    from sandbox.__main__ import _interrupt

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        with pytest.raises(KeyboardInterrupt):
            _interrupt(signal.SIGINT, None)
        # From the first signal on, further ones are ignored until everything is stopped.
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow"


@pytest.mark.parametrize(
    ("env", "separate"),
    [
        pytest.param({}, False, id="auto-on-the-sqlite-default"),
        pytest.param({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////tmp/a.db"}, False, id="auto-on-sqlite"),
        pytest.param({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": PG}, True, id="auto-on-postgresql"),
        pytest.param(
            {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": PG, "TOILLESS_EXECUTION_API": "shared"}, False, id="shared-on-pg"
        ),
        pytest.param({"TOILLESS_EXECUTION_API": "Separate"}, True, id="separate-on-sqlite"),
    ],
)
def test_the_execution_api_has_its_own_server_on_postgresql_unless_told(env: dict[str, str], separate: bool) -> None:
    from sandbox.launcher import execution_api_separate

    assert execution_api_separate(env) is separate


def test_an_unknown_execution_api_mode_is_an_error() -> None:
    from sandbox.launcher import execution_api_separate

    with pytest.raises(ValueError, match="TOILLESS_EXECUTION_API"):
        execution_api_separate({"TOILLESS_EXECUTION_API": "both"})


def test_a_separate_execution_api_server_gets_the_tasks_and_the_core_server_the_rest(tmp_path: Path) -> None:
    from sandbox.airflow_group import component_commands

    env = airflow_environment(tmp_path, 18080, "pw", {"PATH": "/usr/bin"}, execution_api_port=18090)
    commands = component_commands(env)

    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18090/execution/"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18080"
    assert commands["api-server"][1:] == ["api-server", "--apps", "core"]
    assert commands["execution-api-server"][1:] == ["api-server", "--apps", "execution", "--port", "18090"]
    assert {"scheduler", "dag-processor", "triggerer", "intake-worker"} <= set(commands)


def test_a_shared_api_server_serves_everything_as_airflow_does(tmp_path: Path) -> None:
    from sandbox.airflow_group import component_commands

    # A port left in the environment by an earlier split run does not split this one.
    env = airflow_environment(tmp_path, 18080, "pw", {"PATH": "/usr/bin", "TOILLESS_EXECUTION_API_PORT": "18090"})
    commands = component_commands(env)

    assert "TOILLESS_EXECUTION_API_PORT" not in env
    assert commands["api-server"][1:] == ["api-server"]
    assert "execution-api-server" not in commands


@pytest.mark.parametrize(
    ("value", "expected"),
    [pytest.param(None, 0, id="unset"), pytest.param("", 0, id="empty"), pytest.param("10", 10, id="ten")],
)
def test_tasks_niceness_lowers_the_scheduler_and_so_its_task_processes(value: str | None, expected: int) -> None:
    from sandbox.airflow_group import component_commands

    env = {} if value is None else {"TOILLESS_TASKS_NICENESS": value}
    commands = component_commands(env)

    prefix = ["nice", "-n", str(expected)] if expected else []
    assert commands["scheduler"][: len(prefix)] == prefix
    assert commands["scheduler"][len(prefix) + 1 :] == ["scheduler", "--skip-serve-logs"]
    assert commands["api-server"][0].endswith("airflow")  # the API server keeps its priority
    assert commands["intake-worker"][0] != "nice"


@pytest.mark.parametrize("value", ["20", "-5", "high"])
def test_a_bad_tasks_niceness_is_an_error(value: str) -> None:
    from sandbox.airflow_group import tasks_niceness

    with pytest.raises(ValueError, match=r"invalid literal|0-19"):
        tasks_niceness({"TOILLESS_TASKS_NICENESS": value})
