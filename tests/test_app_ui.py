"""The web app's pure parts: formatting (escaping, highlight offsets, the sources panel and
trace), upload names and the documents folder, eval cases, and the app's settings."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from chatbot.answer_text import DECLINE_PREFIX, decline_note, decline_reason, decline_text
from chatbot.eval_cases import append_case, make_case, strip_citations
from chatbot.types import Answer, Citation, Passage, Trace
from chatbot.web.config import WebSettings
from chatbot.web.documents import DocumentsFolder, UploadError, safe_name
from chatbot.web.ui import (
    answer_markdown,
    esc,
    highlight_span,
    history_for_chain,
    md_escape,
    plain_text,
    sources_html,
    trace_html,
)
from ingest import SettingsError

DOC = (
    "Intro line. The council met on <b>Tuesday</b> & voted <script>alert(1)</script>. "
    "Then ${x} and {{y}} happened."
)


def passage(text: str = DOC, start: int = 1000, n: int = 1, chunk_id: str = "c1") -> Passage:
    return Passage(
        chunk_id=chunk_id,
        text=text,
        source="notes/council.txt",
        title="Council <minutes>",
        start=start,
        end=start + len(text),
        date="2024-01-02",
        n=n,
        dense_score=0.61,
        dense_rank=1,
        bm25_score=3.2,
        bm25_rank=2,
        fused_score=0.0325,
    )


def citation_for(p: Passage, quote: str, n: int = 1, **kw) -> Citation:
    a = p.text.index(quote)
    return Citation(
        n=n,
        source=p.source,
        title=p.title,
        date=p.date,
        chunk_id=p.chunk_id,
        quote=quote,
        start=p.start + a,
        end=p.start + a + len(quote),
        passage=p.text,
        **kw,
    )


def answer_with(p: Passage, c: Citation, text: str, **kw) -> Answer:
    return Answer(
        text=text,
        declined=False,
        citations=[c],
        trace=Trace(standalone_query="when did the council meet", passages=[p], timings_ms={}),
        **kw,
    )


QUOTE = "The council met on <b>Tuesday</b> & voted <script>alert(1)</script>."


# ---- escaping


def test_esc_escapes_html_and_template_syntax():
    out = esc('<img src=x onerror="a()">${1}{{2}}`')
    assert "<" not in out and ">" not in out and '"' not in out
    assert "${" not in out and "{{" not in out and "`" not in out
    assert out.count("&#") >= 10


def test_md_escape_keeps_only_the_answer_structure():
    text = "Short [1].\n\n> A *quote* with ![img](http://x/y.png) and <b>tag</b> [1]\n- item_a"
    out = md_escape(text)
    assert out.startswith("Short &#91;1&#93;")
    assert "\n> A &#42;quote&#42;" in out  # the quote marker stays Markdown
    assert "\n- item&#95;a" in out  # so does the list marker
    assert "![" not in out and "<b>" not in out and "](" not in out
    assert plain_text(out) == text  # reversible for the history


def test_md_escape_mid_line_does_not_keep_markers():
    assert md_escape("> not a quote", line_start=False).startswith("&#62;")


# ---- the chat message


def test_answer_markdown_marks_unsupported_sentences_and_round_trips():
    p = passage()
    c = citation_for(p, QUOTE)
    text = "They met on Tuesday [1].\n\n> " + QUOTE + " [1]\n\nThe mayor resigned later."
    a = answer_with(p, c, text, unsupported_sentences=["The mayor resigned later."])
    md = answer_markdown(a)
    marked = r'<mark class="docqa-unsupported"[^>]*>⚠ The mayor resigned later&#46;</mark>'
    assert re.search(marked, md)
    assert "<script>" not in md and "&#60;script&#62;" in md
    assert "docqa-note" in md
    assert plain_text(md) == text


def test_answer_markdown_lists_unsupported_sentences_it_cannot_place():
    p = passage()
    c = citation_for(p, QUOTE)
    a = answer_with(p, c, "They met [1].", unsupported_sentences=["Elsewhere."])
    md = answer_markdown(a)
    assert "Also unsupported" in md and "Elsewhere&#46;" in md
    assert plain_text(md) == "They met [1]."


def test_declined_answer_is_badged_and_escaped():
    a = Answer(
        text="The documents don't say.\nThe closest passages are:\n- <i>Council</i> (a.txt)",
        declined=True,
    )
    md = answer_markdown(a)
    assert 'class="docqa-badge docqa-declined"' in md
    assert "<i>" not in md
    assert plain_text(md) == a.text


def test_history_for_chain_reads_gradio_messages_and_drops_markup():
    answer_md = answer_markdown(Answer(text="No <b>idea</b>.", declined=True))
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Who met <b>?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": answer_md}]},
        {"role": "assistant", "content": [{"type": "file", "file": {"path": "x.png"}}]},
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": "Plain string turn"},
        "not a message",
    ]
    assert history_for_chain(history) == [
        {"role": "user", "content": "Who met <b>?"},
        {"role": "assistant", "content": "No <b>idea</b>."},
        {"role": "user", "content": "Plain string turn"},
    ]


# ---- the sources panel


def test_highlight_offsets_come_from_the_passage_start():
    p = passage(start=5000)
    c = citation_for(p, QUOTE)
    a, b = highlight_span(c, p)
    assert p.text[a:b] == QUOTE and a == p.text.index(QUOTE)


def test_highlight_falls_back_to_finding_the_quote_and_gives_up_cleanly():
    p = passage(start=5000)
    c = citation_for(p, QUOTE)
    c.start, c.end = 1, 2  # offsets that do not reproduce the quote
    assert highlight_span(c, p) == (p.text.index(QUOTE), p.text.index(QUOTE) + len(QUOTE))
    assert highlight_span(c, None) == (p.text.index(QUOTE), p.text.index(QUOTE) + len(QUOTE))
    c.quote = "not in the passage"
    assert highlight_span(c, p) is None


def test_sources_panel_shows_provenance_and_the_highlighted_escaped_passage():
    p = passage()
    p.page = 3
    c = citation_for(p, QUOTE, page=3)
    html_out = sources_html(answer_with(p, c, "They met [1]."))
    assert '<span class="docqa-n">[1]</span>' in html_out
    assert "Council &#60;minutes&#62;" in html_out and "2024-01-02" in html_out
    assert "notes/council.txt" in html_out and "page 3" in html_out
    marked = re.search(r'<mark class="docqa-quote">(.*?)</mark>', html_out).group(1)
    assert "The council met on &#60;b&#62;Tuesday" in marked
    assert "<script>" not in html_out and "<b>" not in html_out
    assert "${" not in html_out and "{{" not in html_out
    assert html_out.index("Intro line.") < html_out.index('<mark class="docqa-quote">')


def test_sources_panel_flags_weak_support_and_lists_closest_passages_when_declined():
    p = passage()
    c = citation_for(p, QUOTE, supported=False, support=0.1)
    assert "weak support" in sources_html(answer_with(p, c, "x [1]."))
    declined = Answer(text="no", declined=True, trace=Trace(passages=[p]))
    out = sources_html(declined)
    assert "closest passages" in out and "docqa-closest" in out and "<mark" not in out
    excerpt = replace(p, title="Alpha beta", title_is_excerpt=True, text="Gamma delta epsilon.")
    out = sources_html(Answer(text="no", declined=True, trace=Trace(passages=[excerpt])))
    assert "Gamma delta epsilon." in out.split('class="docqa-title">')[1].split("</span>")[0]
    assert "Ask a question" in sources_html(None)


def test_trace_shows_query_scores_ranks_and_timings_escaped():
    p = passage()
    a = answer_with(p, citation_for(p, QUOTE), "x [1].")
    a.trace.standalone_query = "when <did> they meet"
    a.trace.timings_ms = {"retrieve": 12.4, "total": 20.0}
    out = trace_html(a)
    assert "when &#60;did&#62; they meet" in out
    assert "0.610 (#1)" in out and "3.200 (#2)" in out and "0.0325" in out
    assert "retrieve 12 ms" in out and "total 20 ms" in out


def test_a_decline_says_the_documents_dont_say_and_the_trace_says_why():
    p = passage()
    reason = "best similarity 0.18 < 0.20 <b>"
    text = decline_text(reason, [p])
    assert text.split("\n")[:2] == [f"{DECLINE_PREFIX}.", "The closest passages are:"]
    assert "0.18" not in text and "similarity" not in text
    assert "notes/council.txt" in text.split("\n")[2]
    assert decline_text(reason, []) == "The documents don't say."

    notes = ["searched for 'jef' as 'jeff'", decline_note(reason)]
    a = Answer(text=text, declined=True, trace=Trace(passages=[p], notes=notes))
    assert decline_reason(a.trace.notes) == reason
    out = trace_html(a)
    assert "<b>Declined:</b> best similarity 0.18 &#60; 0.20 &#60;b&#62;</p>" in out
    assert out.count("best similarity") == 1  # not listed again among the notes
    assert "<li>searched for &#39;jef&#39; as &#39;jeff&#39;</li>" in out
    # An answer saved before its reason was recorded, and an answered one.
    assert "<b>Declined:</b> no reason recorded" in trace_html(replace(a, trace=Trace()))
    assert "Declined" not in trace_html(replace(a, declined=False))


# ---- uploads and the documents folder


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.PDF", "report.pdf"),
        ("../../etc/evil.txt", "evil.txt"),
        ("..\\windows\\x.md", "x.md"),
        (".hidden.txt", "hidden.txt"),
        ("a<script>b.html", "a_script_b.html"),
        ("   .txt", "document.txt"),
        ("x" * 300 + ".txt", "x" * 116 + ".txt"),
    ],
)
def test_safe_name(name, expected):
    assert safe_name(name) == expected


@pytest.mark.parametrize("name", ["run.sh", "noext", "archive.tar.gz"])
def test_safe_name_refuses_other_types_naming_the_file(name):
    with pytest.raises(UploadError, match=re.escape(repr(name))):
        safe_name(name)


def test_documents_folder_saves_inside_only_and_enforces_the_size_limit(tmp_path: Path):
    folder = DocumentsFolder(tmp_path / "docs", max_bytes=100)
    small = tmp_path / "in" / "small.txt"
    small.parent.mkdir()
    small.write_text("hello")
    big = tmp_path / "in" / "big.txt"
    big.write_text("x" * 101)
    result = folder.save([("../../small.txt", small), ("big.txt", big), ("x.exe", small)])
    assert result.saved == ["small.txt"]
    assert (tmp_path / "docs" / "small.txt").read_text() == "hello"
    assert any("over the upload limit" in r and "'big.txt'" in r for r in result.rejected)
    assert any("unsupported file type" in r for r in result.rejected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "in"]


def test_documents_folder_removes_only_its_own_files(tmp_path: Path):
    folder = DocumentsFolder(tmp_path / "docs", max_bytes=100)
    folder.ensure()
    (tmp_path / "docs" / "a.txt").write_text("a")
    outside = tmp_path / "keep.txt"
    outside.write_text("keep")
    (tmp_path / "docs" / "link.txt").symlink_to(outside)
    with pytest.raises(UploadError, match="not in the documents folder"):
        folder.remove("../keep.txt")
    with pytest.raises(UploadError, match="not in the documents folder"):
        folder.remove("link.txt")
    with pytest.raises(UploadError, match="no such file"):
        folder.remove("missing.txt")
    folder.remove("a.txt")
    assert not (tmp_path / "docs" / "a.txt").exists() and outside.exists()


# ---- eval cases


def test_eval_case_right_answer_keeps_the_short_answer_and_the_cited_quote(tmp_path: Path):
    p = passage()
    c = citation_for(p, QUOTE)
    a = answer_with(p, c, "Tuesday [1].\n\n> " + QUOTE + " [1]", short_answer="Tuesday")
    history = [{"role": "user", "content": "Tell me about the council"}]
    case = make_case("When did they meet?", history, a, right=True)
    assert case["answers"] == ["Tuesday"] and case["answerable"] is True
    assert case["evidence"] == QUOTE and case["evidence_doc_ids"] == ["council"]
    assert case["history"] == history and case["type"] == "chat"
    assert case["id"].startswith("chat-")
    out = tmp_path / "sets" / "cases.jsonl"
    append_case(out, case)
    append_case(out, make_case("Again?", [], a, right=True))
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == case


def test_eval_case_wrong_answer_uses_the_typed_answer_or_marks_it_unanswerable():
    p = passage()
    a = answer_with(p, citation_for(p, QUOTE), "Monday [1].", short_answer="Monday")
    corrected = make_case("When did they meet?", [], a, right=False, right_answer=" Tuesday ")
    assert corrected["answers"] == ["Tuesday"] and corrected["evidence"] == QUOTE
    assert corrected["type"] == "chat-corrected" and "history" not in corrected
    nowhere = make_case("Who is the mayor?", [], a, right=False, right_answer="")
    assert nowhere["answers"] == [] and nowhere["answerable"] is False
    assert "evidence" not in nowhere and nowhere["evidence_doc_ids"] == []
    declined = Answer(text="The documents don't say.", declined=True)
    assert make_case("Q?", [], declined, right=True)["answerable"] is False


def test_eval_cases_load_as_an_eval_set(tmp_path: Path):
    dataset = pytest.importorskip("eval.dataset")
    p = passage()
    a = answer_with(p, citation_for(p, QUOTE), "Tuesday [1].", short_answer="Tuesday")
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    out = tmp_path / "cases.jsonl"
    for case in (
        make_case("When?", history, a, right=True),
        make_case("When?", history, a, right=True),  # saved twice: ids still differ
        make_case("Who?", [], a, right=False, right_answer=""),
        make_case("Which day?", [], a, right=False, right_answer="Tuesday"),
    ):
        append_case(out, case)
    cases = dataset.load_set(out)
    assert [c.answerable for c in cases] == [True, True, False, True]
    assert cases[0].evidence == (QUOTE,) and cases[0].history[1]["content"] == "Hello"


def test_strip_citations():
    assert strip_citations("A [1].\n\n> Quote here. [2]") == "A. Quote here."


# ---- settings


def test_app_settings_from_env_and_validation(tmp_path: Path):
    s = WebSettings.from_env(
        {
            "DOCQA_HOST": "0.0.0.0",
            "DOCQA_PORT": "8080",
            "DOCQA_LOGIN_USER": "ann",
            "DOCQA_LOGIN_PASSWORD": "pw",
            "DOCQA_DOCS_DIR": str(tmp_path / "d"),
            "DOCQA_MAX_UPLOAD_MB": "2.5",
            "DOCQA_EVAL_CASES_FILE": str(tmp_path / "c.jsonl"),
            "DOCQA_K": "7",
        }
    )
    assert s.chat.k == 7 and not hasattr(s.chat, "port")
    assert (s.host, s.port, s.login_user, s.max_upload_mb) == ("0.0.0.0", 8080, "ann", 2.5)
    assert s.docs_dir == tmp_path / "d" and s.eval_cases_file == tmp_path / "c.jsonl"
    defaults = WebSettings()
    assert (defaults.host, defaults.port) == ("127.0.0.1", 7860)
    with pytest.raises(SettingsError, match="port must be between 1 and 65535, got 0"):
        WebSettings(port=0)
    with pytest.raises(SettingsError, match="set together"):
        WebSettings(login_user="ann")
    with pytest.raises(SettingsError, match="max_upload_mb must be positive, got -1"):
        WebSettings(max_upload_mb=-1)
