"""Accounts in a real browser (headless system Chromium, fake embedding): a reader logs in,
sees who they are, no upload controls, asks, and logs out; an editor logging in next sees
the upload controls and not the reader's conversation, only their own. The final page is
saved to ``test-artifacts/browser-accounts.png``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from chatbot.accounts import Users, set_user
from tests.conftest import CHROMIUM_ARGS, ROOT, chromium, serve_accounts_app

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"

SEEDS = ROOT / "seeds"
PASSWORDS = {"ann": "orchid lantern 41", "bob": "granite ferry 77"}
BOB_ASKS = "Why has use of the death penalty been declining?"
ANN_ASKS = "Which groups reacted against the call for more executions?"


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("browser-accounts")
    users = set_user(Users(), "ann", "editor", PASSWORDS["ann"])
    users = set_user(users, "bob", "reader", PASSWORDS["bob"])
    demo, local_url, _, app = serve_accounts_app(base, users)
    try:
        yield local_url
    finally:
        demo.close()
        app.close()


def test_a_reader_and_an_editor_each_see_their_own_page(url: str):
    from playwright.sync_api import Page, expect, sync_playwright

    def log_in(page: Page, name: str) -> None:
        page.goto(url)
        page.locator("input[type=password]").wait_for()
        page.locator("input:not([type=password])").first.fill(name)
        page.locator("input[type=password]").fill(PASSWORDS[name])
        page.get_by_role("button", name="Login").click()
        expect(page.locator("#docqa-user")).to_contain_text(f"Logged in as {name}")

    def ask(page: Page, question: str) -> None:
        page.locator("#docqa-question textarea").fill(question)
        page.locator("#docqa-question textarea").press("Enter")
        expect(page.locator('#docqa-chat [data-testid="bot"]')).to_have_count(1)
        expect(page.locator("#docqa-conversations")).to_contain_text(question)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            # A wrong password is refused on the login page.
            page.goto(url)
            page.locator("input:not([type=password])").first.fill("bob")
            page.locator("input[type=password]").fill("not his password")
            page.get_by_role("button", name="Login").click()
            expect(page.get_by_text("Incorrect Credentials", exact=False)).to_be_visible()

            log_in(page, "bob")
            expect(page.locator("#docqa-user")).to_contain_text("Logged in as bob (reader)")
            page.get_by_role("tab", name="Documents").click()
            expect(page.locator("#docqa-reader-note")).to_be_visible()
            expect(page.locator("#docqa-upload")).to_be_hidden()
            expect(page.get_by_role("button", name="Reingest folders")).to_be_hidden()
            expect(page.get_by_role("button", name="Remove and reingest")).to_be_hidden()
            page.get_by_role("tab", name="Chat").click()
            expect(page.locator("#docqa-collection")).to_be_visible()  # readers choose one
            expect(page.locator("#docqa-collections-box")).to_be_hidden()  # but not create
            ask(page, BOB_ASKS)

            # The "Log out" link is Gradio's /logout (followed here in this tab: the page's
            # Markdown links may open a new one), which ends the session.
            logout = page.locator("#docqa-user").get_by_role("link", name="Log out")
            expect(logout).to_have_attribute("href", re.compile(r"(^|/)logout$"))
            page.goto(url.rstrip("/") + "/logout")
            expect(page.locator("input[type=password]")).to_be_visible()
            log_in(page, "ann")
            expect(page.locator("#docqa-user")).to_contain_text("Logged in as ann (editor)")
            expect(page.locator("#docqa-conversations")).not_to_contain_text(BOB_ASKS)
            expect(page.locator("#docqa-collections-box")).to_be_visible()
            ask(page, ANN_ASKS)
            expect(page.locator("#docqa-conversations")).not_to_contain_text(BOB_ASKS)
            page.get_by_role("tab", name="Documents").click()
            expect(page.locator("#docqa-upload")).to_be_visible()
            expect(page.get_by_role("button", name="Reingest folders")).to_be_visible()
            expect(page.locator("#docqa-reader-note")).to_be_hidden()
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser-accounts.png"), full_page=True)
            browser.close()
