"""hadolint and checkov pass on the Dockerfile; every exception is commented where it applies."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from ops import image
from ops.tools import run_checkov

# The one checkov check the Dockerfile skips, with the reason given next to it.
EXPECTED_CHECKOV_SKIPS = {"CKV_DOCKER_2"}


def hadolint_findings(dockerfile=image.DOCKERFILE) -> list[dict]:
    """What `invoke image.lint` shows, as JSON (inline `# hadolint ignore=` comments apply)."""
    command = [shutil.which("hadolint"), "--no-color", "--format", "json", str(dockerfile)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=False).stdout)


def test_hadolint_finds_nothing_and_each_ignore_says_why():
    findings = hadolint_findings()
    assert [f"{f['code']} line {f['line']}: {f['message']}" for f in findings] == []
    for line in image.DOCKERFILE.read_text().splitlines():
        if match := re.match(r"\s*#\s*hadolint ignore=(\S+)(.*)", line):
            assert len(match[2].strip(" :-")) > 20, f"say why {match[1]} does not apply: {line}"


def test_hadolint_reports_a_bad_dockerfile(tmp_path):
    """The check above can fail: the same call flags the usual mistakes."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    codes = {finding["code"] for finding in hadolint_findings(bad)}
    assert {"DL3007", "DL3008", "DL3015"} <= codes


@pytest.fixture(scope="module")
def checkov():
    [report] = run_checkov("dockerfile", "--file", str(image.DOCKERFILE))
    return report


def test_checkov_fails_nothing(checkov):
    failed = checkov["results"]["failed_checks"]
    assert [f"{f['check_id']}: {f['check_name']}" for f in failed] == []
    assert checkov["summary"]["passed"] > 50, "checkov ran only a few checks"
    print(f"\ncheckov dockerfile: {checkov['summary']}")


def test_checkov_skips_are_the_expected_ones_with_reasons(checkov):
    skipped = checkov["results"]["skipped_checks"]
    assert {s["check_id"] for s in skipped} == EXPECTED_CHECKOV_SKIPS
    for check in skipped:
        reason = check["check_result"]["suppress_comment"].strip()
        assert len(reason) > 40, f"{check['check_id']}: say why the check does not apply"
