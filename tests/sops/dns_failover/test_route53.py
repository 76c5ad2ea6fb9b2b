"""dns_failover with the route53 provider, end to end (dag.test) on a moto server and the real dnsmasq pair.

The service name's failover record set: PRIMARY -> ns1 (127.0.0.1), SECONDARY -> ns2 (127.0.0.2), each with its
health check. A failover is one ChangeResourceRecordSets batch, then GetChange until INSYNC.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sandbox.dns_pair import DnsPair
from sandbox.moto_server import MotoServer
from tests.sops.dns_failover.conftest import alert, pair_settings, report_text, xcom

pytestmark = pytest.mark.integration

RECORD = "dns.example.test."


def seed_failover_records(moto: MotoServer, pair: DnsPair) -> dict[str, Any]:
    route53 = moto.client("route53")
    zone = route53.create_hosted_zone(Name="example.test.", CallerReference=uuid.uuid4().hex)["HostedZone"]
    zone_id = zone["Id"].rsplit("/", 1)[-1]
    checks = {}
    for name in ("ns1", "ns2"):
        address, port = pair.address(name)
        checks[name] = route53.create_health_check(
            CallerReference=uuid.uuid4().hex,
            HealthCheckConfig={"IPAddress": address, "Port": port, "Type": "TCP"},
        )["HealthCheck"]["Id"]
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": RECORD,
                "Type": "A",
                "SetIdentifier": role.lower(),
                "Failover": role,
                "TTL": 30,
                "ResourceRecords": [{"Value": pair.address(name)[0]}],
                "HealthCheckId": checks[name],
            },
        }
        for role, name in (("PRIMARY", "ns1"), ("SECONDARY", "ns2"))
    ]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return {"zone_id": zone_id, "checks": checks}


def records(moto: MotoServer, zone_id: str) -> dict[str, dict[str, Any]]:
    found = moto.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {r["Failover"]: r for r in found if r.get("Failover")}


@pytest.fixture
def route53_env(dns_pair: DnsPair, moto_server: MotoServer, slack_sink, set_variable):
    seeded = seed_failover_records(moto_server, dns_pair)

    def configure(**route53: Any) -> dict[str, Any]:
        settings = pair_settings(
            dns_pair,
            provider="route53",
            route53={
                "aws_conn_id": "aws_default",
                "hosted_zone_id": seeded["zone_id"],
                "record_name": RECORD,
                "record_type": "A",
                "health_checks": seeded["checks"],
                "insync_timeout_seconds": 10,
                **route53,
            },
        )
        set_variable("toilless_dns_failover", settings)
        return seeded

    return configure


def test_route53_down_primary_fails_over_and_swaps_the_records(
    route53_env, dns_pair: DnsPair, moto_server: MotoServer, run_failover, slack_sink
) -> None:
    seeded = route53_env(shutdown_argv=[str(dns_pair.tool), "-a", "shutdown", "-s"])
    dns_pair.break_server("ns1", "stopped")
    run = run_failover({"alert": alert()})
    assert run.state == "success"
    found, _ = xcom(run, "find_active_server")
    assert (found["active"], found["provider"]) == ("ns1", "route53")
    moved, _ = xcom(run, "fail_over_to_standby")
    assert (moved["outcome"], moved["forced"]) == ("done", False)
    assert "INSYNC" in moved["detail"]
    now = records(moto_server, seeded["zone_id"])
    assert now["PRIMARY"]["ResourceRecords"] == [{"Value": "127.0.0.2"}]
    assert now["PRIMARY"]["HealthCheckId"] == seeded["checks"]["ns2"]
    assert now["SECONDARY"]["ResourceRecords"] == [{"Value": "127.0.0.1"}]
    verified, _ = xcom(run, "verify_failover")
    assert verified["verified"] is True
    assert "please restore ns1" in report_text(slack_sink)


def test_route53_without_a_shutdown_forces_and_takes_the_old_server_out(
    route53_env, dns_pair: DnsPair, moto_server: MotoServer, run_failover
) -> None:
    seeded = route53_env(shutdown_argv=[])
    dns_pair.break_server("ns1", "stopped")
    run = run_failover({"alert": alert()})
    assert run.state == "success"
    shutdown, _ = xcom(run, "shut_down_active")
    assert (shutdown["acted"], shutdown["ok"]) == (True, False)
    moved, _ = xcom(run, "fail_over_to_standby")
    assert moved["forced"] is True
    now = records(moto_server, seeded["zone_id"])
    assert now["PRIMARY"]["ResourceRecords"] == [{"Value": "127.0.0.2"}]
    assert "SECONDARY" not in now
