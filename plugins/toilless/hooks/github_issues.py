"""GitHub issues through the GitHub provider: find which markers labelled issues already carry, create an issue.

System calls only: which issues to file and how a finding's marker is made is decided in
``toilless.sops.aws_cost_review`` (issues, steps).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from airflow.providers.github.hooks.github import GithubHook

log = logging.getLogger(__name__)


class GithubIssueHook(GithubHook):
    """GitHub issues through the GitHub provider's connection (token; ``host`` for GitHub Enterprise).

    :param github_conn_id: the GitHub connection
    """

    def existing_fingerprints(self, repo_name: str, label: str, markers: Iterable[str]) -> dict[str, str]:
        """Which of ``markers`` already appear in an issue (open or closed) carrying ``label``: marker -> URL.

        Listing the label's issues is read-after-write consistent, unlike the search API, so an issue filed a
        moment ago by the previous try of this task is found.
        """
        return {marker: found["url"] for marker, found in self.existing_issues(repo_name, label, markers).items()}

    def existing_issues(self, repo_name: str, label: str, markers: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Like :meth:`existing_fingerprints`, with each issue's number too: marker -> ``{"number", "url"}``."""
        wanted = set(markers)
        found: dict[str, dict[str, Any]] = {}
        if not wanted:
            return found
        repo = self.get_conn().get_repo(repo_name, lazy=True)
        for issue in repo.get_issues(state="all", labels=[label]):
            body = issue.body or ""
            for marker in wanted - found.keys():
                if marker in body:
                    found[marker] = {"number": issue.number, "url": issue.html_url}
            if found.keys() == wanted:
                break
        return found

    def add_comment(self, repo_name: str, number: int, body: str) -> str:
        """Comment on issue ``number`` (``POST /repos/{owner}/{repo}/issues/{n}/comments``); returns its URL."""
        from toilless.common.cost_contracts import GITHUB_BODY_MAX, GithubContractError

        # GitHub answers 422 for an empty comment or one over the body limit: refuse before the call.
        if not isinstance(body, str) or not body.strip() or len(body) > GITHUB_BODY_MAX:
            size = len(body) if isinstance(body, str) else type(body).__name__
            raise GithubContractError(f"a comment needs a body of 1-{GITHUB_BODY_MAX} characters, got {size}")
        issue = self.get_conn().get_repo(repo_name, lazy=True).get_issue(number)
        return issue.create_comment(body).html_url

    def create_issue(
        self, repo_name: str, *, title: str, body: str, labels: list[str], epic_issue: int = 0
    ) -> dict[str, Any]:
        """Create one issue and add it under the epic when GitHub allows (sub-issues): number and URL."""
        from github import GithubException

        from toilless.common.cost_contracts import check_github_issue

        # GitHub answers 422 for a title, body or label over its limits: refuse before the call, never retried.
        check_github_issue(repo_name, title=title, body=body, labels=labels)
        repo = self.get_conn().get_repo(repo_name, lazy=True)
        issue = repo.create_issue(title=title, body=body, labels=labels)
        log.info("Filed %s: %s", issue.html_url, title)
        result: dict[str, Any] = {"number": issue.number, "url": issue.html_url, "epic": None}
        if epic_issue:
            try:
                repo.get_issue(epic_issue).add_sub_issue(issue.id)
                result["epic"] = epic_issue
            except GithubException as err:
                # The body already says "Part of #N": a missing sub-issue link must not fail the review.
                log.warning("Could not add #%s under epic #%s: %s", issue.number, epic_issue, err)
        return result
