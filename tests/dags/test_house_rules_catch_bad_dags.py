"""The house rules themselves: fed a DAG that breaks each rule, they say so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.dags.house_rules import dag_violations, parse_in_fresh_process, parse_violations, source_violations

BAD = Path(__file__).parent / "fixture_bad"


def _bad_dag():
    from airflow.sdk import DAG, Param
    from airflow.sdk.bases.operator import BaseOperator

    class Noop(BaseOperator):
        def execute(self, context):
            return None

    with DAG(
        dag_id="bad_dag",
        schedule=None,
        catchup=True,
        params={"threshold": Param(5, type="integer")},
        default_args={"retry_delay": timedelta(seconds=1)},
    ) as dag:
        Noop(task_id="Step1")
    return dag


def _good_dag():
    from airflow.sdk import DAG, Param
    from airflow.sdk.bases.operator import BaseOperator

    from toilless.common.dag_defaults import default_args

    class Noop(BaseOperator):
        def execute(self, context):
            return None

    with DAG(
        dag_id="good_dag",
        schedule=None,
        catchup=False,
        tags=["sop"],
        doc_md="# Good",
        params={"threshold": Param(5, type="integer", title="Threshold", description="When to act.")},
        default_args=default_args(owner="sre"),
    ) as dag:
        Noop(task_id="check_storage")
    return dag


def test_rules_pass_a_compliant_dag() -> None:
    assert dag_violations(_good_dag()) == []


def test_rules_catch_every_broken_rule() -> None:
    found = "\n".join(dag_violations(_bad_dag()))
    for expected in (
        "no doc_md",
        "no tags",
        "catchup is on",
        "retries not set",
        "owner is the default",
        "no shared Slack failure notifier",
        "id is not verb_noun",
        "param threshold: needs a title and a description",
    ):
        assert expected in found


def test_parse_rules_catch_network_and_heavy_imports_at_parse_time() -> None:
    report = parse_in_fresh_process(BAD / "parse_time_io.py")
    found = "\n".join(parse_violations(report))
    assert "heavy imports at parse time: boto3, botocore" in found
    assert "network connect at DAG-parse time" in found


def test_parse_rules_pass_a_trivial_dag_file() -> None:
    report = parse_in_fresh_process(BAD / "trivial.py")
    assert parse_violations(report) == []
    assert report["dag_ids"] == ["trivial"]


def test_source_rules_catch_wrong_dag_id_and_missing_max_active_runs() -> None:
    found = "\n".join(source_violations(BAD / "trivial.py", ["something_else"]))
    assert "expected exactly one DAG with dag_id 'trivial'" in found
    assert "max_active_runs not set" in found
