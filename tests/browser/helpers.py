"""Helpers of the browser tests: finding Chromium, watching a page, signing in, screenshots."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Dialog, Error, Page, Response

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
ADMIN = "root"
ANALYST = "alice"
CSP_DIRECTIVES = ("default-src 'self'", "script-src 'self'", "object-src 'none'")


def chromium_executable() -> str | None:
    """Debian's Chromium (or $CHROMIUM_PATH); Playwright's own browser download is not used."""
    for candidate in (
        os.environ.get("CHROMIUM_PATH"),
        "chromium",
        "chromium-browser",
        "/usr/bin/chromium",
    ):
        if candidate:
            found = shutil.which(candidate)
            if found:
                return found
    return None


@dataclass
class Watch:
    """What a page did that a user would not see: dialogs, console errors, uncaught exceptions."""

    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Watch:
        """Start recording on `page` (dialogs are dismissed so nothing blocks)."""
        page.on("dialog", self._on_dialog)
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        return self

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} [{message.location.get('url', '')}]")

    def _on_page_error(self, error: Error) -> None:
        self.page_errors.append(str(error))

    def assert_quiet(self, where: str, *, error_pages: tuple[str, ...] = ()) -> None:
        """No dialog fired, no script threw and nothing logged an error.

        Chromium logs every 4xx as a console error: the browser's own /favicon.ico probe and the
        `error_pages` (URL paths whose error status the test asserts itself) are not suspicious.
        An injected `<img src=x>` would be: its failed load is logged with its URL.
        """
        assert self.dialogs == [], f"{where}: a dialog fired: {self.dialogs}"
        assert self.page_errors == [], f"{where}: a script threw: {self.page_errors}"
        expected = ("/favicon.ico", *error_pages)
        unexpected = [
            e
            for e in self.console_errors
            if not (
                e.startswith("Failed to load resource")
                and urlsplit(e.rsplit("[", 1)[-1].rstrip("]")).path in expected
            )
        ]
        assert unexpected == [], f"{where}: console errors: {unexpected}"


def sign_in(page: Page, name: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person would, and wait for the queue."""
    page.goto("/dashboard/login")
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/dashboard")


def assert_csp(response: Response | None, where: str) -> None:
    """The response carries a strict Content-Security-Policy (no inline script allowed)."""
    assert response is not None, f"{where}: no response"
    csp = response.headers.get("content-security-policy", "")
    for directive in CSP_DIRECTIVES:
        assert directive in csp, f"{where}: CSP {csp!r} lacks {directive!r}"
    assert "unsafe-inline" not in csp, f"{where}: CSP allows inline code: {csp!r}"
    assert "unsafe-eval" not in csp, f"{where}: CSP allows eval: {csp!r}"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path
