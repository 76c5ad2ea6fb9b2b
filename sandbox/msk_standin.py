"""A small Amazon MSK stand-in for the sandbox: DescribeClusterV2, UpdateBrokerType and TagResource over MSK's real
REST-JSON wire format (paths and camelCase members from botocore's ``kafka`` model), for one or more clusters.

moto 5.2.5 has no UpdateBrokerType and makes ARNs without the cluster-name segment real MSK ARNs have, so `make run`
gives msk_cpu_headroom this instead. A broker-type change moves the cluster to UPDATING and, ``update_seconds``
later, to ACTIVE with the new type and a new CurrentVersion, as MSK does after its rolling replacement.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from email.message import Message
from typing import Any
from urllib.parse import unquote

from sandbox.http import LoopbackHTTPServer, Response

_JSON = [("Content-Type", "application/json")]


class MskStandIn(LoopbackHTTPServer):
    name = "msk-standin"

    def __init__(self, port: int = 0, *, update_seconds: float = 30.0) -> None:
        super().__init__(port)
        self.update_seconds = update_seconds
        self.clusters: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def add_cluster(self, arn: str, name: str, *, instance_type: str, brokers: int = 3) -> None:
        with self._lock:
            self.clusters[arn] = {
                "arn": arn,
                "name": name,
                "state": "ACTIVE",
                "instance_type": instance_type,
                "brokers": brokers,
                "version": uuid.uuid4().hex[:14].upper(),
                "tags": {},
                "ready_at": None,
                "target": None,
            }

    def handle(self, method: str, path: str, headers: Message, body: bytes) -> Response:
        self.calls.append((method, path))
        parts = path.split("?", 1)[0].split("/")
        with self._lock:
            self._settle()
            if method == "GET" and path.startswith("/api/v2/clusters/"):
                return self._describe(unquote(parts[4]))
            if method == "PUT" and path.startswith("/v1/clusters/") and path.endswith("/nodes/type"):
                return self._update(unquote(parts[3]), json.loads(body or b"{}"))
            if method == "POST" and path.startswith("/v1/tags/"):
                return self._tag(unquote(parts[3]), json.loads(body or b"{}"))
        return _error(404, "NotFoundException", f"no such operation {method} {path}")

    def _settle(self) -> None:
        now = time.monotonic()
        for cluster in self.clusters.values():
            if cluster["ready_at"] is not None and now >= cluster["ready_at"]:
                cluster.update(state="ACTIVE", instance_type=cluster["target"], ready_at=None, target=None)
                cluster["version"] = uuid.uuid4().hex[:14].upper()

    def _describe(self, arn: str) -> Response:
        cluster = self.clusters.get(arn)
        if cluster is None:
            return _error(404, "NotFoundException", f"The specified cluster was not found: {arn}")
        info = {
            "clusterArn": arn,
            "clusterName": cluster["name"],
            "clusterType": "PROVISIONED",
            "state": cluster["state"],
            "currentVersion": cluster["version"],
            "tags": cluster["tags"],
            "provisioned": {
                "brokerNodeGroupInfo": {"instanceType": cluster["instance_type"], "clientSubnets": ["subnet-sandbox"]},
                "numberOfBrokerNodes": cluster["brokers"],
                "enhancedMonitoring": "PER_TOPIC_PER_BROKER",
            },
        }
        return 200, _JSON, json.dumps({"clusterInfo": info}).encode()

    def _update(self, arn: str, request: dict[str, Any]) -> Response:
        cluster = self.clusters.get(arn)
        if cluster is None:
            return _error(404, "NotFoundException", f"The specified cluster was not found: {arn}")
        if cluster["state"] != "ACTIVE":
            return _error(400, "BadRequestException", f"cluster is {cluster['state']}")
        if request.get("currentVersion") != cluster["version"]:
            return _error(400, "BadRequestException", "The CurrentVersion does not match the cluster's version")
        cluster.update(state="UPDATING", target=request["targetInstanceType"])
        cluster["ready_at"] = time.monotonic() + self.update_seconds
        operation = arn.replace(":cluster/", ":cluster-operation/") + "/" + uuid.uuid4().hex
        return 200, _JSON, json.dumps({"clusterArn": arn, "clusterOperationArn": operation}).encode()

    def _tag(self, arn: str, request: dict[str, Any]) -> Response:
        cluster = self.clusters.get(arn)
        if cluster is None:
            return _error(404, "NotFoundException", f"The specified resource was not found: {arn}")
        cluster["tags"].update(request.get("tags") or {})
        return 204, [], b""


def _error(status: int, code: str, message: str) -> Response:
    headers = [*_JSON, ("x-amzn-ErrorType", code)]
    return status, headers, json.dumps({"message": message}).encode()
