"""Test-wide setup. Airflow reads its configuration at import, so the environment is fixed here, first.

Each test session gets its own AIRFLOW_HOME (a temporary SQLite metadata DB, migrated once), never the one of
``make run``. Fixture modules in tests/fixtures/ are loaded as plugins: add a file there to add a server fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DAGS = REPO / "tests" / "dags" / "fixture_dags"
_LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"

_home = Path(tempfile.mkdtemp(prefix="toilless-test-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API__BASE_URL": "http://127.0.0.1:8080",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": "toilless\\..*",
        # dag.test() serializes DAGs from the configured bundles: dags/ plus the test-only fixture DAGs.
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {"name": "dags-folder", "classpath": _LOCAL_BUNDLE, "kwargs": {}},
                {"name": "test-fixtures", "classpath": _LOCAL_BUNDLE, "kwargs": {"path": str(FIXTURE_DAGS)}},
            ]
        ),
        "TOILLESS_INCLUDE_DIR": str(REPO / "include"),
        # Tests must never reach real AWS by accident.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)
for _name in list(os.environ):
    # A developer's real connections must not leak into tests.
    if _name.startswith("AIRFLOW_CONN_") or _name.startswith("AIRFLOW_VAR_"):
        del os.environ[_name]

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}" for path in (REPO / "tests" / "fixtures").glob("*.py") if path.stem != "__init__"
)


_OWN_BASETEMP = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Give this session a tmp_path root of its own (unless --basetemp is given).

    pytest's default root, /tmp/pytest-of-<user>/pytest-<N>, is shared by every session of the same user, and each
    session prunes it to the latest three when it ends: with several sessions on one machine (parallel CI jobs on one
    runner, several people) a failed run's files, e.g. the `make run` test's launcher log, were gone seconds after the
    run. Must run before pytest's own pytest_configure builds the tmp_path factory.
    """
    if config.option.basetemp is None:
        basetemp = Path(tempfile.mkdtemp(prefix="toilless-pytest-"))
        config.option.basetemp = str(basetemp)
        config.stash[_OWN_BASETEMP] = basetemp


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs two processes, ``--dist loadgroup``), every test that uses the running
    Airflow goes to the same process, so the suite starts that sandbox once instead of once per process."""
    for item in items:
        if "live_airflow" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("live_airflow"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Kept after a failure, for its logs (the path is in the failure's traceback); removed after a green run.
    basetemp = session.config.stash.get(_OWN_BASETEMP, None)
    if basetemp is not None and exitstatus == 0:
        shutil.rmtree(basetemp, ignore_errors=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_home, ignore_errors=True)
