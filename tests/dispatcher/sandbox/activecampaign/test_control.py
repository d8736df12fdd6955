"""The request log, rejections, reset, views, and the `python -m dispatcher.sandbox` entry
point choosing the provider."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dispatcher.sandbox.__main__ import chosen_provider, rate_limits_on
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.sandbox.activecampaign.conftest import answer, sync_contact

ROOT = Path(__file__).resolve().parents[4]


def test_each_accepted_request_is_logged_with_method_path_query_time_and_body(
    api: httpx.Client, raw: httpx.Client, clock: object
) -> None:
    sync_contact(api, "ada@example.com")
    answer(api.get("/contacts", params={"email": "ada@example.com"}), 200)
    api.get("/contacts/9")  # a 404: a rejection, not logged

    logged = raw.get("/_sandbox/requests").json()
    only_sync = raw.get("/_sandbox/requests", params={"path": "/api/3/contact/sync"}).json()

    assert [(r["seq"], r["method"], r["path"], r["query"]) for r in logged] == [
        (1, "POST", "/api/3/contact/sync", ""),
        (2, "GET", "/api/3/contacts", "email=ada%40example.com"),
    ]
    assert [r["endpoint"] for r in logged] == ["POST /api/3/contact/sync", "GET /api/3/contacts"]
    assert logged[0]["received_s"] == 1_800_000_000.25
    assert logged[0]["body"] == {"contact": {"email": "ada@example.com"}}
    assert logged[1]["body"] is None
    assert logged[0]["received_at"] == "2027-01-15T08:00:00.250000+00:00", "the sandbox's clock"
    assert "api-token" not in logged[0]["headers"], "the key is not recorded"
    assert len(only_sync) == 1
    (rejection,) = raw.get("/_sandbox/rejections").json()
    assert (rejection["status"], rejection["path"]) == (404, "/api/3/contacts/9")


def test_deleting_requests_forgets_the_log_but_not_the_account(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    sync_contact(api, "ada@example.com")

    assert raw.delete("/_sandbox/requests").status_code == 204

    assert ac.requests() == [] and ac.rejections() == []
    assert [c["email"] for c in ac.contacts()] == ["ada@example.com"]


def test_reset_gives_a_new_seeded_account(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    sync_contact(api, "ada@example.com")
    raw.post("/_sandbox/automations", json={"name": "Extra"})
    raw.post("/_sandbox/faults", json={"status": 500})

    assert raw.post("/_sandbox/reset").status_code == 204

    assert raw.get("/_sandbox/contacts").json() == []
    assert [a["id"] for a in raw.get("/_sandbox/automations").json()] == ["1", "2"]
    assert raw.get("/_sandbox/faults").json() == [] and ac.requests() == []
    assert sync_contact(api, "grace@example.com")["id"] == "1", "ids count from 1 again"


def test_views_show_contacts_lists_and_throttled(api: httpx.Client, raw: httpx.Client) -> None:
    sync_contact(api, "ada@example.com", firstName="Ada")

    (contact,) = raw.get("/_sandbox/contacts", params={"email": "ADA@example.com"}).json()
    assert (
        contact | {"email": "ada@example.com", "firstName": "Ada", "lists": {}, "tags": []}
        == contact
    )
    assert raw.get("/_sandbox/contacts", params={"email": "nobody@example.com"}).json() == []
    assert raw.get("/_sandbox/lists").json() == []
    throttled = raw.get("/_sandbox/throttled").json()
    assert (throttled["total"], throttled["answers"]) == (0, [])
    assert throttled["buckets"]["api"] == {"refused": 0, "windows": {"1": {"limit": 5, "peak": 1}}}
    assert throttled["buckets"]["bulk_import"] == {
        "refused": 0,
        "windows": {"60": {"limit": 100, "peak": 0}},
    }
    assert raw.get("/_sandbox/health").json() == {"status": "ok"}
    assert raw.get("/_sandbox/nothing").status_code == 404


@pytest.mark.parametrize(
    ("argv", "env", "provider"),
    [
        ([], {}, "klaviyo"),
        ([], {"MARKETING_PROVIDER": "sandbox"}, "klaviyo"),
        ([], {"MARKETING_PROVIDER": "activecampaign"}, "activecampaign"),
        (["--provider", "activecampaign"], {}, "activecampaign"),
        (["--provider", "klaviyo"], {"MARKETING_PROVIDER": "activecampaign"}, "klaviyo"),
    ],
)
def test_the_provider_comes_from_the_flag_or_the_environment(
    argv: list[str], env: dict[str, str], provider: str
) -> None:
    assert chosen_provider(argv, env) == provider


def test_rate_limits_are_on_unless_switched_off() -> None:
    assert rate_limits_on({}) and rate_limits_on({"MARKETING_SANDBOX_RATE_LIMITS": "on"})
    assert not rate_limits_on({"MARKETING_SANDBOX_RATE_LIMITS": "off"})


def test_python_m_dispatcher_sandbox_serves_activecampaign() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "MARKETING_SANDBOX_ADDRESS": f"127.0.0.1:{port}",
        "MARKETING_PROVIDER": "activecampaign",
        "MARKETING_SANDBOX_API_KEY": "dev-key",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.sandbox"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        started = process.stderr.readline()  # blocks until the one start-up line
        assert f"activecampaign sandbox listening on http://127.0.0.1:{port}" in started
        url = f"http://127.0.0.1:{port}/api/3/automations"
        assert httpx.get(url, headers={"Api-Token": "dev-key"}).status_code == 200
        assert httpx.get(url, headers={"Api-Token": "other"}).status_code == 403
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_endpoint_names_the_route_template(
    api: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    contact = sync_contact(api, "ada@example.com")
    answer(api.get(f"/contacts/{contact['id']}/contactLists"), 200)

    (logged,) = ac.requests(f"/api/3/contacts/{contact['id']}/contactLists")

    assert logged["endpoint"] == "GET /api/3/contacts/{id}/contactLists"
