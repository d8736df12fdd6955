"""The Prometheus alert rules (service/monitoring/alerts.yml) are valid and do
what their unit tests (tests/alerts/alerts_test.yml) say: each alert fires past
its threshold and stays silent just under it. Both run promtool, which the
Makefile installs (Debian's `prometheus` package): without it these fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = Path("service/monitoring/alerts.yml")
RULE_TESTS = Path("tests/alerts/alerts_test.yml")
ALERTS = {
    "MarketingQueueBacklog",
    "MarketingProcessingLag",
    "MarketingFailedDeliveriesOlderThan24h",
    "MarketingSyncFailureRate",
    "MarketingProviderSlowResponses",
    "MarketingUnsubscribeRate",
    "MarketingAttributionBacklog",
    "MarketingBudgetRequestsLate",
}


def _promtool(*args: str | Path) -> str:
    """promtool's output; the test fails with it when promtool does."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool not found on PATH: `make test` and `make lint` install it "
            "(Debian package `prometheus`: apt-get install prometheus)",
            pytrace=False,
        )
    done = subprocess.run(
        [promtool, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def test_the_rules_are_valid() -> None:
    assert f"SUCCESS: {len(ALERTS)} rules found" in _promtool("check", "rules", RULES)


def test_each_alert_fires_past_its_threshold_and_not_under_it() -> None:
    assert "SUCCESS" in _promtool("test", "rules", RULE_TESTS)


def test_every_alert_has_cases_that_fire_and_that_do_not() -> None:
    """Every alert of the rule file is tested both ways (text-level: the file's
    cases as promtool reads them, without a YAML parser)."""
    rules = (ROOT / RULES).read_text()
    defined = {line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line}
    assert defined == ALERTS
    fires: set[str] = set()
    silent: set[str] = set()
    alertname = ""
    for line in (ROOT / RULE_TESTS).read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("alertname:"):
            alertname = stripped.split(":", 1)[1].strip()
        elif stripped == "exp_alerts: []":
            silent.add(alertname)
        elif stripped == "exp_alerts:":
            fires.add(alertname)
    assert fires == ALERTS, f"alerts never seen firing: {ALERTS - fires}"
    assert silent == ALERTS, f"alerts never seen silent: {ALERTS - silent}"
