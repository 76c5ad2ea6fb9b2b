"""The fake GitHub's issue comments follow GitHub's documented contract (REST "Create an issue comment" and "List
issue comments"): 201 with the comment, 422 without a body, 404 for an unknown issue, the issue's comment count."""

from __future__ import annotations

from typing import Any

import requests

REPO = "example-org/infrastructure"


def test_comments_endpoint_as_github_documents_it(fake_github: Any) -> None:
    issue = fake_github.add_issue(REPO, "disk full")
    url = f"{fake_github.url}/repos/{REPO}/issues/{issue['number']}/comments"
    auth = {"Authorization": "token t"}

    created = requests.post(url, json={"body": "seen again"}, headers=auth, timeout=10)
    missing_body = requests.post(url, json={}, headers=auth, timeout=10)
    unknown = requests.post(
        f"{fake_github.url}/repos/{REPO}/issues/99/comments", json={"body": "x"}, headers=auth, timeout=10
    )
    anonymous = requests.post(url, json={"body": "x"}, timeout=10)
    listed = requests.get(url, headers=auth, timeout=10)

    assert created.status_code == 201
    comment = created.json()
    assert comment["body"] == "seen again"
    assert comment["issue_url"] == issue["url"]
    assert comment["html_url"].startswith(issue["html_url"] + "#issuecomment-")
    assert {"id", "user", "created_at", "updated_at"} <= comment.keys()
    assert (missing_body.status_code, unknown.status_code, anonymous.status_code) == (422, 404, 401)
    assert [c["body"] for c in listed.json()] == ["seen again"]
    assert fake_github.issues(REPO)[0]["comments"] == 1
    assert fake_github.comments(REPO, issue["number"]) == listed.json()
