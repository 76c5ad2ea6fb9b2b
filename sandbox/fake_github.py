"""A small GitHub REST stand-in: just the issue endpoints the cost review uses, in memory, on loopback.

Serves what PyGithub (through the GitHub provider's ``GithubHook``) calls to list, create and link issues:
``GET/POST /repos/{owner}/{repo}/issues``, ``GET /repos/{owner}/{repo}/issues/{n}``,
``POST /repos/{owner}/{repo}/issues/{n}/sub_issues``, ``GET/POST /repos/{owner}/{repo}/issues/{n}/comments`` (as GitHub
documents them: 201 with the comment, 422 without a ``body``; the issue's ``comments`` count follows) and
``GET /user``. Point a ``github`` Connection's host at
:attr:`FakeGitHub.url`. Requests without an ``Authorization`` header get 401, like GitHub.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.http import LoopbackHTTPServer, Response


class FakeGitHub(LoopbackHTTPServer):
    """In-memory issues per repository. ``issues(repo)`` and ``requests`` let a test see what happened."""

    name = "fake-github"

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._lock = threading.Lock()
        self._issues: dict[str, list[dict[str, Any]]] = {}
        self._comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._next_id = 1000
        #: (method, path) of every request, in order.
        self.requests: list[tuple[str, str]] = []
        #: Status every request gets while set (tests use it to make GitHub fail).
        self.fail_with_status: int | None = None

    def handle(self, method: str, path: str, headers: Message, body: bytes) -> Response:
        with self._lock:
            self.requests.append((method, path))
        if self.fail_with_status:
            status, payload = self.fail_with_status, {"message": "fake GitHub told to fail"}
        elif not headers.get("Authorization"):
            status, payload = 401, {"message": "Requires authentication"}
        else:
            status, payload = self._route(method, path, json.loads(body or b"{}"))
        return status, [("Content-Type", "application/json; charset=utf-8")], json.dumps(payload).encode()

    def connection(self) -> dict[str, Any]:
        """Airflow ``github`` Connection (JSON form) pointing at this server."""
        return {"conn_type": "github", "password": "ghp_sandbox", "host": self.url}

    # -- state -----------------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._issues.clear()
            self._comments.clear()
            self.requests.clear()
            self.fail_with_status = None

    def issues(self, repo: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(issue) for issue in self._issues.get(repo, [])]

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(comment) for comment in self._comments.get((repo, int(number)), [])]

    def add_issue(self, repo: str, title: str, body: str = "", labels: list[str] | None = None) -> dict[str, Any]:
        with self._lock:
            return self._create(repo, {"title": title, "body": body, "labels": labels or []})

    # -- routing ---------------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = urlsplit(path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        segments = [segment for segment in parts.path.split("/") if segment]
        if segments == ["user"]:
            return 200, {"login": "toilless", "id": 1, "type": "Bot"}
        if len(segments) < 4 or segments[0] != "repos" or segments[3] != "issues":
            return 404, {"message": "Not Found"}
        repo = f"{segments[1]}/{segments[2]}"
        with self._lock:
            if len(segments) == 4 and method == "GET":
                return 200, self._list(repo, query)
            if len(segments) == 4 and method == "POST":
                if not body.get("title"):
                    return 422, {"message": "Validation Failed"}
                return 201, self._create(repo, body)
            issue = self._find(repo, segments[4])
            if issue is None:
                return 404, {"message": "Not Found"}
            if len(segments) == 5 and method == "GET":
                return 200, issue
            if segments[5:] == ["sub_issues"] and method == "POST":
                child = next((i for i in self._issues.get(repo, []) if i["id"] == body.get("sub_issue_id")), None)
                if child is None:
                    return 422, {"message": "sub_issue_id not found"}
                issue.setdefault("sub_issue_ids", []).append(child["id"])
                return 201, child
            if segments[5:] == ["comments"] and method == "GET":
                return 200, self._comments.get((repo, issue["number"]), [])
            if segments[5:] == ["comments"] and method == "POST":
                if not isinstance(body.get("body"), str) or not body["body"]:
                    return 422, {"message": "Validation Failed"}
                return 201, self._comment(repo, issue, body["body"])
        return 404, {"message": "Not Found"}

    def _list(self, repo: str, query: dict[str, str]) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        wanted = {label for label in query.get("labels", "").split(",") if label}
        found = []
        for issue in self._issues.get(repo, []):
            names = {label["name"] for label in issue["labels"]}
            if (state == "all" or issue["state"] == state) and wanted <= names:
                found.append(issue)
        return found

    def _find(self, repo: str, number: str) -> dict[str, Any] | None:
        return next((i for i in self._issues.get(repo, []) if str(i["number"]) == number), None)

    def _create(self, repo: str, body: dict[str, Any]) -> dict[str, Any]:
        issues = self._issues.setdefault(repo, [])
        number = len(issues) + 1
        self._next_id += 1
        issue = {
            "id": self._next_id,
            "number": number,
            "title": body["title"],
            "body": body.get("body") or "",
            "state": "open",
            "labels": [{"name": name} for name in body.get("labels") or []],
            "url": f"{self.url}/repos/{repo}/issues/{number}",
            "html_url": f"{self.url}/{repo}/issues/{number}",
            "comments": 0,
        }
        issues.append(issue)
        return issue

    def _comment(self, repo: str, issue: dict[str, Any], text: str) -> dict[str, Any]:
        self._next_id += 1
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        comment = {
            "id": self._next_id,
            "url": f"{self.url}/repos/{repo}/issues/comments/{self._next_id}",
            "html_url": f"{issue['html_url']}#issuecomment-{self._next_id}",
            "issue_url": issue["url"],
            "body": text,
            "user": {"login": "toilless", "id": 1, "type": "Bot"},
            "author_association": "NONE",
            "created_at": now,
            "updated_at": now,
        }
        self._comments.setdefault((repo, issue["number"]), []).append(comment)
        issue["comments"] += 1
        return comment
