"""In a real browser: an analyst works a webhook ticket from the queue to a recorded outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import Watch, assert_csp, screenshot, sign_in

State = Callable[[int], dict[str, Any]]
NOTE = "Called Mark Ellis on +44 20 7946 0000 (on file since 2024): he sent no such email."


def _assert_closed_as_fraud(page: Page, number: int, analyst: str) -> None:
    expect(page.locator("#ticket-status")).to_have_text("Confirmed fraud")
    expect(page.locator("#ticket-assignee")).to_have_text("You")
    timeline = page.locator("#timeline")
    expect(timeline.locator("li")).to_have_count(4)
    newest = timeline.locator("li").first
    expect(newest).to_contain_text("Status changed: In progress → Confirmed fraud")
    expect(newest.locator(".event-reason")).to_have_text(NOTE)
    expect(newest.locator(".actor")).to_have_text(f"user:{analyst}")
    expect(page.locator("#chain-status")).to_contain_text("Chain intact: 4 events")
    expect(page.locator("#outcome-form")).to_have_count(0)
    expect(page.locator("#reopen-form")).to_be_visible()


def test_an_analyst_claims_starts_and_records_confirmed_fraud_with_htmx(
    page: Page, watch: Watch, analyst: str, risky_ticket: int, ticket_state: State
) -> None:
    sign_in(page, analyst)
    row = page.locator(f"#ticket-row-{risky_ticket}")
    expect(row).to_contain_text("New bank details for your payments")
    expect(row).to_contain_text("Open")
    expect(row).to_contain_text("Unassigned")
    screenshot(page, "queue")

    row.get_by_role("link", name="New bank details for your payments").click()
    page.wait_for_url(f"**/dashboard/tickets/{risky_ticket}")
    expect(page.locator("#ticket-title")).to_contain_text(f"#{risky_ticket}")
    expect(page.locator("#ticket-status")).to_have_text("Open")
    # A full page load would drop this marker: its survival shows htmx swapped fragments in.
    page.evaluate("window.stillTheSamePage = true")

    with page.expect_response(f"**/tickets/{risky_ticket}/claim") as claimed:
        page.get_by_role("button", name="Claim: assign to me").click()
    assert claimed.value.status == 200
    assert claimed.value.request.headers.get("hx-request") == "true"
    expect(page.locator("#work-notice")).to_have_text("The ticket is assigned to you.")
    expect(page.locator("#ticket-assignee")).to_have_text("You")

    page.get_by_role("button", name="Start verification").click()
    expect(page.locator("#work-notice")).to_have_text("Verification started.")
    expect(page.locator("#ticket-status")).to_have_text("In progress")

    page.check("#outcome-fraud")
    page.fill("#outcome-note", NOTE)
    page.get_by_role("button", name="Record outcome").click()
    expect(page.locator("#work-notice")).to_have_text("Outcome recorded: the ticket is closed.")
    _assert_closed_as_fraud(page, risky_ticket, analyst)
    assert page.evaluate("window.stillTheSamePage === true"), "an action reloaded the page"
    assert page.url.endswith(f"/dashboard/tickets/{risky_ticket}")

    state = ticket_state(risky_ticket)
    assert (state["status"], state["outcome"], state["assignee"]) == (
        "confirmed_fraud",
        "confirmed_fraud",
        analyst,
    )
    assert state["events"][-1] == ("status", f"user:{analyst}", "confirmed_fraud", NOTE)

    reloaded = page.reload()
    assert reloaded is not None
    assert reloaded.status == 200
    assert_csp(reloaded, "ticket page")
    assert page.evaluate("window.stillTheSamePage") is None
    _assert_closed_as_fraud(page, risky_ticket, analyst)
    expect(page.locator("#work-notice")).to_have_count(0)
    screenshot(page, "ticket")

    page.get_by_role("link", name="← Queue").click()
    page.wait_for_url("**/dashboard")
    expect(page.locator(f"#ticket-row-{risky_ticket}")).to_have_count(0)
    expect(page.locator("#count-confirmed_fraud")).to_have_text("1")
    page.click("#tab-confirmed_fraud")
    expect(page.locator(f"#ticket-row-{risky_ticket}")).to_contain_text("Confirmed fraud")
    watch.assert_quiet("working a ticket")


def test_the_same_work_is_possible_without_javascript(
    browser: Browser, live_url: str, analyst: str, risky_ticket: int, ticket_state: State
) -> None:
    context = browser.new_context(base_url=live_url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, analyst)
        row = page.locator(f"#ticket-row-{risky_ticket}")
        row.get_by_role("button", name="Claim").click()
        page.wait_for_url("**/dashboard")
        expect(row.locator(".assignee")).to_have_text("You")

        page.goto(f"/dashboard/tickets/{risky_ticket}")
        page.get_by_role("button", name="Start verification").click()
        page.wait_for_url(f"**/dashboard/tickets/{risky_ticket}?done=started*")
        expect(page.locator("#work-notice")).to_have_text("Verification started.")
        expect(page.locator("#ticket-status")).to_have_text("In progress")

        page.check("#outcome-fraud")
        page.fill("#outcome-note", NOTE)
        page.get_by_role("button", name="Record outcome").click()
        page.wait_for_url(f"**/dashboard/tickets/{risky_ticket}?done=outcome*")
        expect(page.locator("#work-notice")).to_have_text("Outcome recorded: the ticket is closed.")
        _assert_closed_as_fraud(page, risky_ticket, analyst)
    finally:
        context.close()
    assert ticket_state(risky_ticket)["status"] == "confirmed_fraud"
