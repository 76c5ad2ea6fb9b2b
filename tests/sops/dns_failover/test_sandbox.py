"""The sandbox's settings (what `make run` sets) drive the DAG over the same kind of pair: wait 0 -> failover."""

from __future__ import annotations

import pytest

from sandbox.services.dns_failover import sandbox_settings
from tests.sops.dns_failover.conftest import FAILOVER_NS2, SHUTDOWN_NS1, actions, alert, xcom

pytestmark = pytest.mark.integration


def test_sandbox_settings_fail_over_a_servfail_server_with_wait_zero(dns_pair, run_failover, slack_sink, set_variable):
    set_variable("toilless_dns_failover", sandbox_settings(dns_pair, wait_minutes=0))
    dns_pair.break_server("ns1", "servfail")
    run = run_failover({"alert": alert()})
    assert run.state == "success"
    wait, _ = xcom(run, "wait_for_recovery")
    assert (wait["status"], wait["looks"]) == ("timeout", 1)
    assert actions(dns_pair) == [SHUTDOWN_NS1, FAILOVER_NS2]
    verified, _ = xcom(run, "verify_failover")
    assert verified["verified"] is True
    assert dns_pair.active == "ns2"
