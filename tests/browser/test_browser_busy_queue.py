"""In a real browser, on a long-running server: a busy morning's tickets all reach the queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.helpers import Watch, sign_in

# More than 10 ticket inserts on each of the app's at most 5 pooled connections: psycopg
# prepares a statement on its 6th run and Postgres plans it generically from the 6th run of
# the prepared statement on, so a query that only works with its parameters known fails here.
EMAILS = 51


def _vendor_email(i: int) -> dict[str, Any]:
    return {
        "message_id": f"<bank-change-{i}@vendor{i}.example>",
        "from": f"Accounts {i} <accounts@vendor{i}.example>",
        "to": ["ap@northgate.com"],
        "subject": f"New bank details ({i})",
        "text": (
            "Hello,\n\nPlease update our bank details, our new IBAN is "
            "GB33 BUKB 2020 1555 5555 55 and all future invoices must be paid to this account."
        ),
    }


def test_every_risky_email_of_a_busy_morning_opens_a_ticket_in_the_queue(
    page: Page, watch: Watch, analyst: str, post_email: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    for i in range(1, EMAILS + 1):
        try:
            verdict = post_email(_vendor_email(i))
        except AssertionError as exc:
            raise AssertionError(f"email {i} of {EMAILS}: {exc}") from None
        assert verdict["ticket"] is not None, f"email {i} opened no ticket: {verdict}"

    sign_in(page, analyst)
    expect(page.locator("#queue-summary")).to_contain_text(f"of {EMAILS}")
    expect(page.locator("#queue-table tbody tr")).to_have_count(25)
    page.click("#page-next")
    page.click("#page-next")
    expect(page.locator("#queue-table tbody tr")).to_have_count(EMAILS - 50)
    watch.assert_quiet("busy queue")
