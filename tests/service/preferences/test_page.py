"""The preference page over HTTP: seeing changes nothing, a one-click POST
(RFC 8058) is answered and applied by the one-click worker (the page shows it
done meanwhile), a saved form records each change with where it came from, and
a forged or expired link changes nothing."""

from __future__ import annotations

import httpx
import pytest
from marketing.v1 import consent_pb2
from marketing.v1 import service_pb2 as pb

from tests.builders import consent, upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email, unique_phone
from tests.service.preferences.conftest import MAX_AGE_S, WORDING, WORDING_VERSION, Pages

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _person(stub, *, sms: bool = True) -> tuple[str, str]:
    """A subscriber (email granted, a newsletter member) with SMS consent."""
    email = unique_email("prefs")
    contact = stub.SubscribeNewsletter(
        pb.SubscribeNewsletterRequest(email=email, source="checkout")
    ).contact
    if sms:
        stub.UpsertContact(upsert(email, phone=unique_phone()))
        stub.RecordConsent(pb.RecordConsentRequest(parent=contact.name, consent=consent("SMS")))
    return email, contact.name


def _contact(stub, name: str):
    return stub.GetContact(pb.GetContactRequest(name=name)).contact


def _newest(stub, name: str) -> consent_pb2.Consent:
    return stub.ListConsents(pb.ListConsentsRequest(parent=name)).consents[0]


def test_the_page_shows_the_channels_and_changes_nothing(
    stub, harness: ServiceHarness, pages: Pages
) -> None:
    email, name = _person(stub)
    before = harness.table_counts()
    page = httpx.get(pages.url(name))
    assert page.status_code == 200
    assert email in page.text and WORDING in page.text
    assert 'name="email" id="email" checked' in page.text
    assert 'name="sms" id="sms" checked' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in page.text
    assert harness.table_counts() == before


def _queue_drained(harness: ServiceHarness) -> bool:
    """The one-click worker (the harness runs it) has applied every click."""
    return bool(harness.scalar("SELECT count(*) = 0 FROM marketing_one_click"))


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_is_answered_and_applied_by_the_worker(
    stub, harness: ServiceHarness, pages: Pages, encoding: str
) -> None:
    email, name = _person(stub)
    if encoding == "urlencoded":
        answer = httpx.post(pages.url(name), data=ONE_CLICK)
    else:  # RFC 8058 allows multipart/form-data too
        answer = httpx.post(pages.url(name), files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    assert "You are unsubscribed from all our messages." in httpx.get(pages.url(name)).text
    got = assert_eventually(lambda: (c := _contact(stub, name)).suppressed and c)
    assert not got.email_opt_in and not got.newsletter_member
    assert got.sms_opt_in, "one click takes the person off email, not off every channel"
    newest = _newest(stub, name)
    assert (newest.type, newest.granted, newest.source) == (
        consent_pb2.CONSENT_TYPE_EMAIL,
        False,
        "one_click",
    )
    kinds = [row.kind for row in harness.outbox_rows(email)]
    assert kinds[-1] == "contact.unsubscribed", "the provider is told"
    assert_eventually(lambda: _queue_drained(harness))
    before = harness.table_counts()
    assert httpx.post(pages.url(name), data=ONE_CLICK).status_code == 200
    assert_eventually(lambda: _queue_drained(harness))
    assert harness.table_counts() == before, "a second click changes nothing"


def test_saving_records_each_change_with_where_it_came_from(
    stub, harness: ServiceHarness, pages: Pages
) -> None:
    _, name = _person(stub)
    url = pages.url(name)
    answer = httpx.post(
        url,
        # Both boxes shown ticked; SMS unticked.
        data={"action": "save", "email": "on", "shown_email": "on", "shown_sms": "on"},
        headers={"User-Agent": "Browser/1.0"},
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=saved")
    got = _contact(stub, name)
    assert got.email_opt_in and not got.sms_opt_in and not got.suppressed
    newest = _newest(stub, name)
    assert (newest.type, newest.granted, newest.source) == (
        consent_pb2.CONSENT_TYPE_SMS,
        False,
        "preference_page",
    )
    assert (newest.ip_address, newest.user_agent) == ("127.0.0.1", "Browser/1.0")
    saved = httpx.get(pages.base_url + answer.headers["location"]).text
    assert "Your preferences are saved." in saved
    # Ticked again: a grant that names the wording the page showed.
    shown = {"shown_email": "on", "shown_sms": "off"}
    httpx.post(url, data={"action": "save", "email": "on", "sms": "on", **shown})
    regranted = _newest(stub, name)
    assert (regranted.granted, regranted.wording_version) == (True, WORDING_VERSION)


def test_a_page_opened_before_a_change_elsewhere_undoes_nothing(stub, pages: Pages) -> None:
    """The page showed SMS off; the person then granted SMS elsewhere; saving the old
    page (SMS still unticked there) leaves SMS on."""
    _, name = _person(stub, sms=False)
    stub.UpsertContact(upsert(_contact(stub, name).email, phone=unique_phone()))
    stale = {"action": "save", "email": "on", "shown_email": "on", "shown_sms": "off"}
    stub.RecordConsent(pb.RecordConsentRequest(parent=name, consent=consent("SMS")))
    assert httpx.post(pages.url(name), data=stale).status_code == 303
    assert _contact(stub, name).sms_opt_in


def test_unsubscribe_from_all_and_subscribe_again(stub, pages: Pages) -> None:
    _, name = _person(stub)
    url = pages.url(name)
    done = httpx.post(url, data={"action": "unsubscribe_all"})
    assert done.status_code == 303
    got = _contact(stub, name)
    assert got.suppressed and not (got.email_opt_in or got.sms_opt_in)
    assert _newest(stub, name).source == "preference_page"
    page = httpx.get(f"{url}?done=unsubscribed").text
    assert "You are unsubscribed from all our messages." in page
    httpx.post(url, data={"action": "subscribe_again"})
    got = _contact(stub, name)
    assert got.email_opt_in and not got.suppressed and got.newsletter_member


def test_a_forged_or_expired_link_changes_nothing(
    stub, harness: ServiceHarness, pages: Pages
) -> None:
    _, name = _person(stub)
    url = pages.url(name)
    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    before = harness.table_counts()
    assert httpx.get(forged).status_code == 404
    assert httpx.post(forged, data=ONE_CLICK).status_code == 404
    pages.now[0] += MAX_AGE_S + 1
    try:
        assert httpx.get(url).status_code == 410
        assert httpx.post(url, data=ONE_CLICK).status_code == 410
    finally:
        pages.now[0] -= MAX_AGE_S + 1
    assert harness.table_counts() == before
    assert not _contact(stub, name).suppressed


def test_an_unknown_action_is_refused(stub, harness: ServiceHarness, pages: Pages) -> None:
    _, name = _person(stub, sms=False)
    before = harness.table_counts()
    assert httpx.post(pages.url(name), data={"action": "delete_everything"}).status_code == 400
    assert harness.table_counts() == before
