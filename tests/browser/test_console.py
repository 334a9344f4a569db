"""The web console in headless Chromium against a local stack, as a user sees it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from localstack.provision import DEMO_ADMIN_API_KEY, DEMO_API_KEY
from tests.support.browser import PHONE, screenshot, sign_in
from tests.support.gateway import Gateway
from tests.support.http import SEED_BODY

pytestmark = pytest.mark.browser
WAIT_MS = 30_000  # the console refreshes every 5 s; a message is delivered within seconds
CHART_HAS_DATA = """([testid, series]) => {
  const chart = Chart.getChart(document.querySelector(`[data-testid="${testid}"]`));
  return Boolean(chart) && chart.data.datasets[series].data.some((v) => v > 0);
}"""


def _send(gateway: Gateway) -> tuple[str, str]:
    """Send one message as the demo client; returns (message id, its client reference)."""
    reference = f"console-{uuid.uuid4().hex[:8]}"
    answer = gateway.request("POST", "/v1/messages", DEMO_API_KEY,
                             {**SEED_BODY, "client_reference": reference})
    assert answer.status == 202, answer.body
    return str(answer.body["message_id"]), reference


def test_a_client_signs_in_and_sees_its_balance(page: Any, console_url: str) -> None:
    sign_in(page, console_url, DEMO_API_KEY)
    # Dollars and cents from the API's credit_cents, e.g. "$999.85" or "$1,000.00".
    expect(page.get_by_test_id("balance-available")).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"),
                                                                  timeout=WAIT_MS)
    expect(page.get_by_test_id("who")).to_have_text("Client: Demo client")
    screenshot(page, "signed-in")


def test_a_sent_message_appears_is_delivered_and_has_a_timeline(page: Any, console_url: str,
                                                               gateway: Gateway) -> None:
    sign_in(page, console_url, DEMO_API_KEY)
    page.get_by_test_id("tab-messages").click()
    message_id, reference = _send(gateway)
    row = page.get_by_test_id("message-row").filter(has_text=reference)
    expect(row).to_contain_text("DELIVERED", timeout=WAIT_MS)
    screenshot(page, "messages")

    row.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("message-fields")).to_contain_text(message_id)
    statuses = page.get_by_test_id("timeline-row").locator("td:nth-child(2)")
    expect(statuses).to_have_text(["QUEUED", "SENDING", "SENT", "DELIVERED"])
    screenshot(page, "message-timeline")
    page.get_by_test_id("message-back").click()
    expect(page.get_by_test_id("messages-table")).to_be_visible()


def test_the_overview_charts_the_deliveries_of_the_last_24_hours(page: Any, console_url: str,
                                                               gateway: Gateway) -> None:
    message_id, _ = _send(gateway)
    gateway.wait_final(DEMO_API_KEY, message_id)
    sign_in(page, console_url, DEMO_API_KEY)
    page.wait_for_function(CHART_HAS_DATA, arg=["chart-delivered", 0], timeout=WAIT_MS)
    page.wait_for_function(CHART_HAS_DATA, arg=["chart-spend", 0], timeout=WAIT_MS)
    expect(page.get_by_test_id("delivery-rate")).to_contain_text("%")
    expect(page.get_by_test_id("ttd-p50")).to_contain_text("s")
    screenshot(page, "overview")


def test_an_unknown_key_is_told_so(page: Any, console_url: str) -> None:
    sign_in(page, console_url, "not-a-key")
    expect(page.get_by_test_id("signin-error")).to_contain_text("That API key is not known")
    expect(page.get_by_test_id("app")).to_be_hidden()
    screenshot(page, "signin-error")


def test_the_operator_sees_the_clients_and_the_queues(page: Any, console_url: str) -> None:
    sign_in(page, console_url, DEMO_ADMIN_API_KEY)
    expect(page.get_by_test_id("tab-operator")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("operator-clients")).to_contain_text("Demo client", timeout=WAIT_MS)
    queues = page.get_by_test_id("operator-queue-row").locator("td:first-child")
    expect(queues).to_have_text(["send", "dlr", "callbacks", "inbound"])
    expect(page.get_by_test_id("operator-providers")).to_contain_text("mock")
    screenshot(page, "operator")


def test_a_client_has_no_operator_tab_and_signs_out(page: Any, console_url: str) -> None:
    sign_in(page, console_url, DEMO_API_KEY)
    tabs = page.get_by_role("tab")
    expect(tabs).to_have_text(["Overview", "Messages", "Inbound", "Opt-outs"])
    expect(page.get_by_test_id("tab-operator")).to_have_count(0)
    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("signin-key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


@pytest.mark.parametrize("tab", ["overview", "messages", "inbound", "opt-outs"])
def test_each_tab_fits_a_phone_without_sideways_scrolling(page: Any, console_url: str,
                                                          tab: str) -> None:
    page.set_viewport_size(PHONE)
    sign_in(page, console_url, DEMO_API_KEY)
    page.get_by_test_id(f"tab-{tab}").click()
    expect(page.get_by_test_id("panel")).to_have_attribute("data-tab", tab)
    page.wait_for_timeout(500)  # the tab's first refresh
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, f"phone-{tab}")


def test_the_tabs_are_keyboard_navigable(page: Any, console_url: str) -> None:
    sign_in(page, console_url, DEMO_API_KEY)
    page.get_by_test_id("tab-overview").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("tab-messages")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("tab-messages")).to_be_focused()
    page.keyboard.press("End")
    expect(page.get_by_test_id("tab-opt-outs")).to_have_attribute("aria-selected", "true")


def test_an_api_that_does_not_answer_is_told_apart_from_a_bad_key(page: Any, console_url: str) -> None:
    page.route("**/v1/me", lambda route: route.abort("connectionrefused"))
    sign_in(page, console_url, DEMO_API_KEY)
    expect(page.get_by_test_id("signin-error")).to_contain_text("The API is not answering")
    expect(page.get_by_test_id("signin-error")).to_contain_text("make up")


def test_without_chart_js_the_overview_says_charts_are_unavailable(page: Any, console_url: str) -> None:
    page.route("**/console/chart.js", lambda route: route.fulfill(
        status=503, content_type="application/json",
        body='{"error": {"code": "console_not_built", "message": "run make console"}}'))
    sign_in(page, console_url, DEMO_API_KEY)
    expect(page.get_by_test_id("charts-unavailable")).to_contain_text("make console")
    expect(page.get_by_test_id("balance-available")).to_contain_text("$", timeout=WAIT_MS)


def test_the_messages_filter_by_client_reference_and_status(page: Any, console_url: str,
                                                           gateway: Gateway) -> None:
    message_id, reference = _send(gateway)
    _send(gateway)
    gateway.wait_final(DEMO_API_KEY, message_id)
    sign_in(page, console_url, DEMO_API_KEY)
    page.get_by_test_id("tab-messages").click()
    page.get_by_test_id("filter-reference").fill(reference)
    page.get_by_test_id("filter-apply").click()
    expect(page.get_by_test_id("message-row")).to_have_count(1)
    expect(page.get_by_test_id("message-row")).to_contain_text(reference)
    page.get_by_test_id("filter-status").select_option("CANCELLED")
    page.get_by_test_id("filter-apply").click()
    expect(page.get_by_test_id("messages-empty")).to_contain_text("No messages match these filters")
