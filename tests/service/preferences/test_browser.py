"""The preference page in a real browser: Debian's headless Chromium, driven through its
chromedriver, with JavaScript turned off (the page must work without it). A person
opens the link from their email, turns text messages off, saves, sees it confirmed,
then unsubscribes from everything and sees that confirmed too; each step is in our
records. `make test` installs Chromium (Debian's `chromium` and `chromium-driver`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from marketing.v1 import service_pb2 as pb
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.builders import consent, upsert
from tests.harness import unique_email, unique_phone
from tests.service.preferences.conftest import Pages

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_WAIT_S = 30  # how long a page may take to come, on a loaded machine
JAVASCRIPT_OFF = {"profile.managed_default_content_settings.javascript": 2}
# A page whose script would retitle it: with JavaScript off, it keeps its title.
PROBE = "data:text/html,<title>off</title><script>document.title='on'</script>"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    assert not missing, f"{missing} not installed: `make test` installs Debian's chromium"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", JAVASCRIPT_OFF)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_a_person_changes_a_preference_and_unsubscribes_without_javascript(
    stub, pages: Pages, browser: WebDriver
) -> None:
    email = unique_email("browser")
    contact = stub.SubscribeNewsletter(
        pb.SubscribeNewsletterRequest(email=email, source="checkout")
    ).contact
    stub.UpsertContact(upsert(email, phone=unique_phone()))
    stub.RecordConsent(pb.RecordConsentRequest(parent=contact.name, consent=consent("SMS")))

    browser.get(PROBE)
    assert browser.title == "off", "the browser runs no page script"
    browser.get(pages.url(contact.name))
    assert email in browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_element(By.ID, "email").is_selected()
    sms = browser.find_element(By.ID, "sms")
    assert sms.is_selected()
    sms.click()
    browser.find_element(By.ID, "save").click()
    assert _shows(browser, "notice", "Your preferences are saved.")
    assert not browser.find_element(By.ID, "sms").is_selected()
    got = stub.GetContact(pb.GetContactRequest(name=contact.name)).contact
    assert got.email_opt_in and not got.sms_opt_in

    browser.find_element(By.ID, "unsubscribe-all").click()
    assert _shows(browser, "unsubscribed", "You are unsubscribed from all our messages.")
    got = stub.GetContact(pb.GetContactRequest(name=contact.name)).contact
    assert got.suppressed and not got.email_opt_in


def _shows(browser: WebDriver, element_id: str, text: str) -> bool:
    """Whether the page a form's POST led to (through its redirect) shows `text` in the
    element: a click returns before the browser has followed the 303, so the element is
    looked up afresh each time (one found on the page being left goes stale)."""
    wait = WebDriverWait(browser, PAGE_WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    shown: bool = wait.until(EC.text_to_be_present_in_element((By.ID, element_id), text))
    return shown
