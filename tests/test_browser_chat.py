"""The chat page in a real browser: headless system Chromium driven by Playwright.

Asks about the seed article, waits for the streamed answer and its citation in the sources
panel, asks a follow-up, uploads a new document (with HTML and template syntax in it), asks
what only that document answers and gives it a thumbs-up. A saved conversation survives an
app restart: reopened from the list, a follow-up uses its history. The final page is saved to
``test-artifacts/browser-chat.png``. Needs Debian's ``chromium`` (``make test`` installs it):
without it this test fails rather than skips.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbot.web.config import WebSettings
from tests.conftest import (
    CHROMIUM_ARGS,
    HANDBOOK_PAGES,
    ROOT,
    chromium,
    headed_pdf_bytes,
    serve_seed_app,
    write,
)

pytestmark = [pytest.mark.slow, pytest.mark.model]

ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "browser-chat.png"
PDF_SCREENSHOT = ARTIFACTS / "browser-pdf-citation.png"
PDF_SENTENCE = "Visiting yachts may stay for fourteen nights at most."
NEW_DOC = (
    "The Zorblat Festival of Quimper\n\n"
    "The Zorblat festival is held every year in June in the Breton town of Quimper. "
    "It was founded in 1987 by the baker Annick Le Goff. Visitors taste "
    "<script>window.__pwned = 1</script> buckwheat pancakes, ${alert(1)} and "
    "<b>{{cider}}</b>.\n"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, WebSettings]]:
    demo, local_url, settings, _ = serve_seed_app(tmp_path_factory.mktemp("app-browser"))
    try:
        yield local_url, settings
    finally:
        demo.close()


def test_chat_page_in_a_real_browser(served: tuple[str, WebSettings], tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    url, settings = served
    executable = chromium()
    new_doc = write(tmp_path / "upload" / "zorblat festival.txt", NEW_DOC)
    ARTIFACTS.mkdir(exist_ok=True)
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
        page.set_default_timeout(30_000)
        try:
            page.goto(url)
            question = page.locator("#docqa-question textarea")
            bot = page.locator('#docqa-chat [data-testid="bot"]')
            sources = page.locator("#docqa-sources")

            def ask(text: str, answers: int) -> None:
                question.fill(text)
                question.press("Enter")
                expect(bot).to_have_count(answers)
                expect(sources.locator(".docqa-source").first).to_be_visible()

            ask("Who told federal prosecutors to seek the death penalty in drug cases?", 1)
            expect(bot.last).to_contain_text("Jeff Sessions")
            expect(bot.last).to_contain_text("[1]")
            expect(sources).to_contain_text("[1]")
            expect(sources).to_contain_text("000_762628c52ecf43e6.txt")
            expect(sources).to_contain_text("2018-03-22")
            expect(sources.locator("mark.docqa-quote").first).to_contain_text("Jeff Sessions")

            ask("What did he say about business as usual?", 2)
            expect(bot.last).to_contain_text("business as usual")

            page.get_by_role("tab", name="Documents").click()
            page.locator("#docqa-upload input[type=file]").set_input_files(str(new_doc))
            expect(page.locator("#docqa-ingest-status textarea")).to_have_value(
                re.compile(r"done: added 1, updated 0, deleted 0, unchanged 1")
            )
            expect(page.locator("#docqa-documents")).to_contain_text("zorblat festival.txt")

            page.get_by_role("tab", name="Chat").click()
            ask("When is the Zorblat festival held?", 3)
            expect(bot.last).to_contain_text("June")
            expect(sources).to_contain_text("zorblat festival.txt")
            expect(sources.locator("mark.docqa-quote").first).to_contain_text("held every year")
            # Document HTML and template syntax show as text; none of it runs.
            expect(sources).to_contain_text("<script>window.__pwned = 1</script>")
            expect(sources).to_contain_text("${alert(1)}")
            expect(sources).to_contain_text("<b>{{cider}}</b>")
            assert page.evaluate("window.__pwned") is None

            page.locator("#docqa-chat").get_by_role("button", name="Like").last.click()
            expect(page.locator("#docqa-judged")).to_contain_text("Answer 3: 👍 saved")
            page.locator("#docqa-save").click()
            expect(page.locator("#docqa-saved textarea")).to_have_value(
                re.compile("^Saved feedback on answer 3; eval case feedback-")
            )
            case = json.loads(settings.eval_cases_file.read_text().splitlines()[-1])
            assert case["question"] == "When is the Zorblat festival held?"
            assert case["answers"] == ["every year in June"]
            assert case["evidence_doc_ids"] == ["zorblat festival"]
            assert [t["role"] for t in case["history"]] == ["user", "assistant"] * 2
            assert not outside, f"the page reached outside the app: {outside}"
        finally:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000


def sentence_box(pdf: Path, page_number: int, sentence: str) -> tuple[float, ...]:
    """Where ``sentence`` lies on the page, found by pypdfium2's own text search: (x0, y0,
    x1, y1) as fractions of the page, origin at the top left."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(pdf))
    try:
        page = document[page_number - 1]
        width, height = page.get_size()
        found = page.get_textpage().search(sentence).get_next()
        assert found, f"{sentence!r} is not on page {page_number}"
        first, count = found
        boxes = [page.get_textpage().get_charbox(i) for i in range(first, first + count)]
        left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
        right, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
        return (left / width, 1 - top / height, right / width, 1 - bottom / height)
    finally:
        document.close()


def test_pdf_citation_shows_its_page_with_the_sentence_highlighted(
    served: tuple[str, WebSettings], tmp_path: Path
):
    from playwright.sync_api import expect, sync_playwright

    url, _ = served
    pdf = write(tmp_path / "upload" / "harbour handbook.pdf", headed_pdf_bytes(HANDBOOK_PAGES))
    expected = sentence_box(pdf, 2, PDF_SENTENCE)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            page.goto(url)
            page.get_by_role("tab", name="Documents").click()
            page.locator("#docqa-upload input[type=file]").set_input_files(str(pdf))
            expect(page.locator("#docqa-ingest-status textarea")).to_have_value(
                re.compile(r"done: added 1, updated 0, deleted 0")
            )
            page.get_by_role("tab", name="Chat").click()
            question = page.locator("#docqa-question textarea")
            question.fill("How many nights may visiting yachts stay?")
            question.press("Enter")
            sources = page.locator("#docqa-sources")
            expect(page.locator('#docqa-chat [data-testid="bot"]').last).to_contain_text("fourteen")
            view = sources.locator(".docqa-pageview").first
            expect(view).to_be_visible()
            expect(view).to_have_attribute("data-page", "2")
            expect(sources).to_contain_text("harbour handbook.pdf")
            image = view.locator("img.docqa-page-img")
            expect(image).to_be_visible()
            assert image.evaluate("img => img.complete && img.naturalWidth") >= 600
            marks = view.locator(".docqa-page-hl")
            expect(marks.first).to_be_visible()
            frame = image.bounding_box()
            boxes = [marks.nth(i).bounding_box() for i in range(marks.count())]
            drawn = (
                (min(b["x"] for b in boxes) - frame["x"]) / frame["width"],
                (min(b["y"] for b in boxes) - frame["y"]) / frame["height"],
                (max(b["x"] + b["width"] for b in boxes) - frame["x"]) / frame["width"],
                (max(b["y"] + b["height"] for b in boxes) - frame["y"]) / frame["height"],
            )
            # The highlight covers the sentence's place on the page, within 1.5% of the page.
            tolerance = 0.015
            assert drawn[0] <= expected[0] + tolerance and drawn[1] <= expected[1] + tolerance
            assert drawn[2] >= expected[2] - tolerance and drawn[3] >= expected[3] - tolerance
            assert all(abs(d - e) < 3 * tolerance for d, e in zip(drawn, expected, strict=True))
        finally:
            page.screenshot(path=str(PDF_SCREENSHOT), full_page=True)
            browser.close()


def test_conversation_survives_an_app_restart(tmp_path: Path):
    """Ask, stop the app, launch it again on the same conversations database, reopen the
    conversation from the list and ask a follow-up that needs its history."""
    from playwright.sync_api import expect, sync_playwright

    from chatbot.conversations import ConversationStore
    from chatbot.web.app import launch
    from tests.conftest import free_port

    question = "Who told federal prosecutors to seek the death penalty in drug cases?"
    follow_up = "What did he say about business as usual?"
    demo, url, settings, handlers = serve_seed_app(tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        bot = page.locator('#docqa-chat [data-testid="bot"]')
        try:
            page.goto(url)
            page.locator("#docqa-question textarea").fill(question)
            page.locator("#docqa-question textarea").press("Enter")
            expect(bot.last).to_contain_text("Jeff Sessions")
            listing = page.locator("#docqa-conversations")
            expect(listing).to_contain_text(question)
            demo.close()
            handlers.close()

            settings = settings.replace(port=free_port())
            demo, handlers, url = launch(
                settings, seeds_dir=ROOT / "seeds", block=False, quiet=True
            )
            page.goto(url)
            expect(bot).to_have_count(0)
            listing.get_by_text(question).click()
            expect(bot).to_have_count(1)
            expect(bot.last).to_contain_text("Jeff Sessions")
            expect(page.locator("#docqa-title textarea, #docqa-title input")).to_have_value(
                question
            )
            page.locator("#docqa-question textarea").fill(follow_up)
            page.locator("#docqa-question textarea").press("Enter")
            expect(bot).to_have_count(2)
            expect(bot.last).to_contain_text("business as usual")
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser-restart.png"), full_page=True)
            browser.close()
            demo.close()
            handlers.close()
    store = ConversationStore(settings.conversations_path)
    try:
        (conversation,) = store.list()
        first, second = store.turns(conversation.id)
    finally:
        store.close()
    assert (first.question, second.question) == (question, follow_up)
    # "he" was resolved from the reopened history: the follow-up searched for Sessions.
    assert "Sessions" in second.answer["trace"]["standalone_query"]


def test_collections_in_a_real_browser(tmp_path: Path):
    """Create a collection, upload into it, ask: answered from it; select the default one:
    a new conversation that does not see it; reopen the first conversation: its collection
    is selected again; delete the collection after its confirmation."""
    from playwright.sync_api import expect, sync_playwright

    question = "When is the Zorblat festival held?"
    upload = write(tmp_path / "upload" / "zorblat festival.txt", NEW_DOC)
    demo, url, _, handlers = serve_seed_app(tmp_path / "app")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        bot = page.locator('#docqa-chat [data-testid="bot"]')
        sources = page.locator("#docqa-sources")
        selector = page.locator("#docqa-collection input")
        note = page.locator("#docqa-collection-note")

        def ask(text: str) -> None:
            page.locator("#docqa-question textarea").fill(text)
            page.locator("#docqa-question textarea").press("Enter")

        try:
            page.goto(url)
            expect(selector).to_have_value("docs")
            page.locator("#docqa-collections-box").get_by_text("New or delete collection").click()
            page.locator("#docqa-new-collection textarea, #docqa-new-collection input").fill(
                "festivals"
            )
            page.locator("#docqa-create-collection").click()
            expect(note).to_contain_text("Created collection festivals")
            expect(selector).to_have_value("festivals")

            page.get_by_role("tab", name="Documents").click()
            expect(page.locator("#docqa-header")).to_contain_text("No documents yet")
            page.locator("#docqa-upload input[type=file]").set_input_files(str(upload))
            expect(page.locator("#docqa-ingest-status textarea")).to_have_value(
                re.compile(r"done: added 1, updated 0, deleted 0, unchanged 0")
            )
            expect(page.locator("#docqa-documents")).to_contain_text("zorblat festival.txt")
            expect(page.locator("#docqa-documents")).not_to_contain_text("000_762628c52ecf43e6")

            page.get_by_role("tab", name="Chat").click()
            ask(question)
            expect(bot.last).to_contain_text("June")
            expect(sources).to_contain_text("zorblat festival.txt")
            expect(page.locator("#docqa-conversations")).to_contain_text("· festivals")

            selector.click()
            page.get_by_role("option", name="docs", exact=True).click()
            expect(note).to_contain_text("Asking collection docs")
            expect(bot).to_have_count(0)
            ask(question)
            expect(bot).to_have_count(1)
            expect(sources).not_to_contain_text("zorblat festival.txt")

            listing = page.locator("#docqa-conversations")
            expect(listing).to_contain_text(f"{question} · docs")  # listed once answered
            expect(listing.get_by_role("radio", checked=True)).to_have_count(1)
            listing.get_by_text(f"{question} · festivals").click()
            expect(selector).to_have_value("festivals")
            expect(bot.last).to_contain_text("June")

            page.locator("#docqa-delete-collection").click()
            confirm = page.locator("#docqa-confirm-text")
            expect(confirm).to_contain_text("Delete collection festivals?")
            expect(confirm).to_contain_text("documents-festivals")
            page.locator("#docqa-confirm-yes").click()
            expect(note).to_contain_text("Deleted collection festivals")
            expect(selector).to_have_value("docs")
            assert handlers.library.names() == ["docs"]
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser-collections.png"), full_page=True)
            browser.close()
            demo.close()
            handlers.close()
