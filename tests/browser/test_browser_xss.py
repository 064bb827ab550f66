"""In a real browser: attacker-controlled email content runs no script and injects no element.

Payloads go in every field an attacker controls (subject, text and HTML body, display name,
From/Reply-To/To addresses, attachment names), through the signed webhook (JSON and raw MIME)
and through the try-an-email page. Three independent signals would show an escape failing:
a dialog (the payload ran), an injected element in the DOM (it was parsed as markup, even if the
CSP then blocked it), or a console error (the CSP refusing an inline script or an image load).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.helpers import Watch, assert_csp, screenshot, sign_in

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SVG = '"><svg onload=alert(1)>'
JS_LINK = '<a href="javascript:alert(1)">Pay here</a>'
TEMPLATE = "tpl:{{7*7}}:tpl"
TEXTAREA = "</textarea><script>alert(1)</script>"
PAYLOADS = (SCRIPT, IMG, SVG, "javascript:alert(1)", TEMPLATE, TEXTAREA)
ALL = " ".join(PAYLOADS)
ASK = (
    "Please update our bank details, our new IBAN is GB33 BUKB 2020 1555 5555 55 and all "
    "future invoices must be paid to this account."
)
# Anything here in the DOM means a payload was parsed as markup.
INJECTED = (
    'img[src="x"]',
    "svg[onload]",
    "[onerror]",
    "[onload]",
    "iframe",
    'a[href^="javascript:" i]',
    'script:not([src^="/dashboard/static/"])',
)


def _text_email() -> dict[str, Any]:
    """A vendor bank change with payloads in the headers, the text body and attachment names."""
    return {
        "message_id": "<xss-text@acme-supplies.com>",
        "from": f'"{SCRIPT} {TEMPLATE}" <mark.ellis@acme-supplies.com>',
        "reply_to": f"Accounts <pay{SVG}@acme-payments.example>",
        "to": [f'"{IMG}" <ap@northgate.com>', f"x{SVG}@northgate.com"],
        "subject": f"New bank details {SCRIPT} {IMG} {SVG} {TEMPLATE}",
        "text": f"Hello,\n\n{ASK}\n\n{ALL}\n{JS_LINK}\n\nThanks,\nMark",
        "attachments": [
            {"filename": f"{IMG}.pdf", "content_type": "application/pdf", "size": 1200},
            {"filename": f"{SVG}.xlsx", "content_type": f"text/html{SVG}", "size": 10},
            {"filename": f"{TEXTAREA}.docx", "content_type": "application/msword"},
            {"filename": f"{TEMPLATE}.txt", "content_type": "text/plain"},
        ],
    }


def _html_email() -> dict[str, Any]:
    """An HTML-only bank change whose markup carries live payloads and a look-alike From."""
    return {
        "message_id": "<xss-html@globex-billing.example>",
        "from": f'"{IMG}" <billing"><svg/onload=alert(1)>@globex-billing.example>',
        "to": ["ap@northgate.com"],
        "subject": f"Invoice {TEXTAREA} {TEMPLATE}",
        "html": (
            f"<html><body><p>Hello,</p><p>{ASK}</p>{SCRIPT}{IMG}"
            f"<svg onload=alert(1)></svg>{JS_LINK}"
            '<iframe src="javascript:alert(1)"></iframe>'
            f"<p>{TEMPLATE} &lt;script&gt;alert(2)&lt;/script&gt;</p></body></html>"
        ),
    }


def _mime_email() -> bytes:
    """Raw MIME: payloads in RFC 2047 encoded words, an HTML part and an RFC 2231 file name."""
    msg = EmailMessage()
    msg["From"] = f'"{IMG} {TEMPLATE}" <finance@initech-pay.example>'
    msg["To"] = "ap@northgate.com"
    msg["Reply-To"] = f"x{SVG}@initech-pay.example"
    msg["Subject"] = f"Ünïcode bank update {SCRIPT} {SVG}"
    msg["Message-ID"] = "<xss-mime@initech-pay.example>"
    msg.set_content(f"Hello,\n\n{ASK}\n\n{ALL}\n")
    msg.add_alternative(f"<p>{ASK}</p>{SCRIPT}{IMG}{JS_LINK}", subtype="html")
    msg.add_attachment(
        b"%PDF-1.4", maintype="application", subtype="pdf", filename=f"ïnvoice{IMG}.pdf"
    )
    return msg.as_bytes()


def _assert_nothing_injected(page: Page, watch: Watch, where: str) -> None:
    page.wait_for_load_state("networkidle")
    for selector in INJECTED:
        expect(page.locator(selector), f"{where}: {selector}").to_have_count(0)
    content = page.content()
    assert "tpl:49:tpl" not in content, f"{where}: {{{{7*7}}}} was evaluated"
    watch.assert_quiet(where)


def test_the_watch_sees_a_script_that_runs(page: Page, watch: Watch) -> None:
    # Proves the detectors can fail: on a page without escaping or CSP the payloads do fire.
    page.set_content(f"<p>{IMG}</p><script>console.error('injected')</script>")
    page.wait_for_timeout(200)
    assert watch.dialogs == ["alert: 1"]
    assert any("injected" in e for e in watch.console_errors)
    assert page.locator('img[src="x"]').count() == 1


def test_payloads_in_webhook_emails_are_shown_as_text_in_the_queue_and_on_the_ticket(
    page: Page,
    watch: Watch,
    analyst: str,
    open_ticket: Callable[[dict[str, Any]], int],
    post_mime: Callable[[bytes], dict[str, Any]],
) -> None:
    text_ticket = open_ticket(_text_email())
    html_ticket = open_ticket(_html_email())
    verdict = post_mime(_mime_email())
    assert verdict["ticket"] is not None, verdict
    mime_ticket = int(verdict["ticket"]["number"])

    sign_in(page, analyst)
    queue = page.goto("/dashboard")
    assert_csp(queue, "queue")
    for number in (text_ticket, html_ticket, mime_ticket):
        expect(page.locator(f"#ticket-row-{number}")).to_be_visible()
    subject = page.locator(f"#ticket-row-{text_ticket} .subject")
    expect(subject).to_have_text(f"New bank details {SCRIPT} {IMG} {SVG} {TEMPLATE}")
    expect(page.locator(f"#ticket-row-{html_ticket} .subject")).to_contain_text(TEXTAREA)
    _assert_nothing_injected(page, watch, "queue")
    screenshot(page, "xss-queue")

    response = page.goto(f"/dashboard/tickets/{text_ticket}")
    assert_csp(response, "ticket page (text email)")
    email = page.locator("#message-1")
    expect(email.locator(".subject")).to_have_text(
        f"New bank details {SCRIPT} {IMG} {SVG} {TEMPLATE}"
    )
    expect(email.locator(".display-name")).to_have_text(f"{SCRIPT} {TEMPLATE}")
    expect(email.locator("#message-body-1")).to_contain_text(TEXTAREA)
    expect(email.locator("#message-body-1")).to_contain_text(IMG)
    headers = email.locator(".headers")
    expect(headers).to_contain_text(SVG)
    expect(headers).to_contain_text(IMG)
    expect(email.locator(".attachments .filename")).to_have_text(
        [f"{IMG}.pdf", f"{SVG}.xlsx", f"{TEXTAREA}.docx", f"{TEMPLATE}.txt"]
    )
    _assert_nothing_injected(page, watch, "ticket page (text email)")
    screenshot(page, "xss-ticket")

    response = page.goto(f"/dashboard/tickets/{html_ticket}")
    assert_csp(response, "ticket page (HTML email)")
    email = page.locator("#message-1")
    expect(email.locator(".display-name")).to_contain_text(IMG)
    expect(email.locator(".subject")).to_have_text(f"Invoice {TEXTAREA} {TEMPLATE}")
    body = email.locator("#message-body-1")
    expect(body).to_contain_text("all future invoices must be paid to this account")
    # Entities in the HTML become their characters, as text; live tags are dropped.
    expect(body).to_contain_text(f"{TEMPLATE} <script>alert(2)</script>")
    expect(body).not_to_contain_text("alert(1)")
    _assert_nothing_injected(page, watch, "ticket page (HTML email)")

    response = page.goto(f"/dashboard/tickets/{mime_ticket}")
    assert_csp(response, "ticket page (MIME email)")
    email = page.locator("#message-1")
    expect(email.locator(".subject")).to_contain_text(SCRIPT)
    expect(email.locator(".display-name")).to_contain_text(IMG)
    expect(email.locator(".attachments .filename")).to_have_text([f"ïnvoice{IMG}.pdf"])
    _assert_nothing_injected(page, watch, "ticket page (MIME email)")

    # The metrics page summarises the same emails in server-built SVG charts.
    response = page.goto("/dashboard/metrics")
    assert response is not None
    assert response.status == 200
    assert_csp(response, "metrics page")
    _assert_nothing_injected(page, watch, "metrics page")


def test_payloads_tried_on_the_try_page_are_shown_as_text(
    page: Page, watch: Watch, analyst: str
) -> None:
    sign_in(page, analyst)
    response = page.goto("/dashboard/try")
    assert_csp(response, "try page")
    pasted = json.dumps(_text_email(), indent=2, ensure_ascii=False)
    page.fill("#try-email", pasted)
    with page.expect_response("**/dashboard/try") as answer:
        page.get_by_role("button", name="Check this email").click()
    assert answer.value.status == 200
    assert_csp(answer.value, "try result")
    result = page.locator("#try-result")
    expect(result).to_be_visible()
    expect(page.locator("#verdict-needs-verification")).to_have_text("yes")
    expect(result.locator(".subject")).to_have_text(
        f"New bank details {SCRIPT} {IMG} {SVG} {TEMPLATE}"
    )
    expect(result.locator(".display-name")).to_have_text(f"{SCRIPT} {TEMPLATE}")
    expect(result.locator("#try-body")).to_contain_text(TEXTAREA)
    expect(result.locator(".attachments .filename")).to_have_count(4)
    # The pasted text comes back inside a <textarea> it tries to close.
    expect(page.locator("#try-email")).to_have_value(pasted)
    _assert_nothing_injected(page, watch, "try page (pasted JSON)")
    screenshot(page, "try")

    page.set_input_files(
        "#try-file",
        {"name": f"{IMG}.eml", "mimeType": "message/rfc822", "buffer": _mime_email()},
    )
    page.fill("#try-email", "")
    page.get_by_role("button", name="Check this email").click()
    expect(page.locator("#try-result .subject")).to_contain_text(SCRIPT)
    expect(page.locator("#try-result .attachments .filename")).to_have_text([f"ïnvoice{IMG}.pdf"])
    _assert_nothing_injected(page, watch, "try page (uploaded MIME)")
