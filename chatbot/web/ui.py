"""Formatting for the web app: answers → chat markdown, citations → the sources panel, the
retrieval trace, the documents table. Pure functions; every document string is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from chatbot.answer_text import DECLINED_NOTE, decline_reason, passage_label
from chatbot.types import Answer, Citation, Passage

# Our own markup in chat messages; ``plain_text`` removes it again for the chain's history.
BADGE_CLASS = "docqa-badge"
NOTE_CLASS = "docqa-note"
UNSUPPORTED_CLASS = "docqa-unsupported"
DECLINED_CLASS = "docqa-declined"
WARNING_MARK = "⚠"
_OWN_SPANS_RE = re.compile(
    rf'<span class="(?:{BADGE_CLASS}|{NOTE_CLASS})[^"]*"[^>]*>.*?</span>', re.DOTALL
)
_TAG_RE = re.compile(r"<[^>]*>")

DOCUMENTS_HEADERS = ["Title", "Date", "Source", "Folder", "Chunks", "Ingested"]


def _refs(chars: str) -> dict[int, str]:
    return {ord(c): f"&#{ord(c)};" for c in chars}


# HTML's specials, and template syntax (``${...}``, ``{{...}}``) so no renderer expands it.
_HTML_TABLE = {**_refs("&<>\"'$`{}")}
# ... plus Markdown punctuation: shown as itself, never read as markup (no links, images,
# emphasis or code from a document's text).
_MD_TABLE = {**_HTML_TABLE, **_refs("\\*_[]()!#|~+-.")}


def esc(text: object) -> str:
    """Escape for HTML text and attributes; a document is shown as text whatever renders it."""
    return str(text).translate(_HTML_TABLE)


# ---- the chat message

_LINE_MARK_RE = re.compile(r"(?:> ?|- )")


def md_escape(text: str, line_start: bool = True) -> str:
    """Escape text for the chat's Markdown: HTML and Markdown punctuation are shown as
    characters; only a leading ``> `` (quote) or ``- `` (list item) on a line stays markup,
    as the answer's own structure. ``line_start``: ``text`` begins a line."""
    out = []
    for i, line in enumerate(text.split("\n")):
        lead = ""
        if i > 0 or line_start:
            m = _LINE_MARK_RE.match(line)
            if m:
                lead, line = m.group(0), line[m.end() :]
        out.append(lead + line.translate(_MD_TABLE))
    return "\n".join(out)


def streaming_markdown(partial: str) -> str:
    """The answer while it streams in: escaped, no other formatting yet."""
    return md_escape(partial)


def answer_markdown(answer: Answer) -> str:
    """The final chat message: the escaped answer, unsupported sentences marked, a declined
    answer badged so it looks different from an answer."""
    if answer.declined:
        badge = (
            f'<span class="{BADGE_CLASS} {DECLINED_CLASS}" '
            'title="The documents do not support an answer">Not in the documents</span>'
        )
        return f"{badge}\n\n{md_escape(answer.text)}"
    body, unmatched = _mark_unsupported(answer.text, answer.unsupported_sentences)
    if answer.unsupported_sentences:
        note = f"{WARNING_MARK} marks a sentence the cited passages do not support."
        if unmatched:
            note += " Also unsupported: " + "; ".join(f"“{md_escape(s, False)}”" for s in unmatched)
        body += f'\n\n<span class="{NOTE_CLASS}">{note}</span>'
    return body


def _mark_unsupported(text: str, sentences: Sequence[str]) -> tuple[str, list[str]]:
    """Escape ``text``, wrapping each sentence of ``sentences`` found in it in a mark."""
    spans: list[tuple[int, int]] = []
    unmatched: list[str] = []
    for sentence in sentences:
        target = sentence.strip().lstrip(">").strip()
        if not target:
            continue
        at = _free_find(text, target, spans)
        if at < 0:
            unmatched.append(target)
        else:
            spans.append((at, at + len(target)))
    out: list[str] = []
    cursor = 0

    def starts_line(at: int) -> bool:
        return at == 0 or text[at - 1] == "\n"

    for a, b in sorted(spans):
        out.append(md_escape(text[cursor:a], starts_line(cursor)))
        out.append(
            f'<mark class="{UNSUPPORTED_CLASS}" title="Not supported by the cited passages">'
            f"{WARNING_MARK} {md_escape(text[a:b], False)}</mark>"
        )
        cursor = b
    out.append(md_escape(text[cursor:], starts_line(cursor)))
    return "".join(out), unmatched


def _free_find(text: str, target: str, taken: list[tuple[int, int]]) -> int:
    """The first occurrence of ``target`` that overlaps no span already taken, or -1."""
    start = 0
    while (at := text.find(target, start)) >= 0:
        if all(at >= b or at + len(target) <= a for a, b in taken):
            return at
        start = at + 1
    return -1


def error_markdown(message: str) -> str:
    return f'<span class="{BADGE_CLASS} docqa-error">Error</span> {md_escape(message, False)}'


def message_text(content: object) -> str:
    """The text of a chat message: a string, or Gradio's list of content parts."""
    if isinstance(content, list):
        return " ".join(
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in content
            if isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text")
        )
    return content if isinstance(content, str) else ""


def plain_text(content: object) -> str:
    """An answer message as the chain should see it in the history: our markup removed,
    character references turned back into characters."""
    text = _OWN_SPANS_RE.sub("", message_text(content))
    text = _TAG_RE.sub("", text)
    text = text.replace(f"{WARNING_MARK} ", "")
    return html.unescape(text).strip()


def history_for_chain(history: Iterable[Any]) -> list[dict[str, str]]:
    """Gradio's chat history as the chain's ``[{"role", "content"}]``: answers unformatted,
    questions as typed; files, components and empty turns dropped."""
    out = []
    for message in history or []:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        content = message.get("content")
        if message["role"] == "assistant":
            text = plain_text(content)
        else:
            text = message_text(content).strip()
        if text:
            out.append({"role": message["role"], "content": text})
    return out


# ---- the sources panel


def passage_for(citation: Citation, passages: Iterable[Passage]) -> Passage | None:
    return next((p for p in passages if p.chunk_id == citation.chunk_id), None)


def highlight_span(citation: Citation, passage: Passage | None) -> tuple[int, int] | None:
    """Where the cited quote lies in the passage text, or None when it cannot be placed.

    The citation carries document offsets; the passage's own start turns them into offsets
    in its text. When that does not reproduce the quote, the quote is searched for.
    """
    text = citation.passage or (passage.text if passage else "")
    if not text or not citation.quote:
        return None
    if passage is not None:
        a, b = citation.start - passage.start, citation.end - passage.start
        if 0 <= a <= b <= len(text) and text[a:b] == citation.quote:
            return (a, b)
    at = text.find(citation.quote)
    return (at, at + len(citation.quote)) if at >= 0 else None


def highlighted_passage(text: str, span: tuple[int, int] | None) -> str:
    if span is None:
        return esc(text)
    a, b = span
    return f'{esc(text[:a])}<mark class="docqa-quote">{esc(text[a:b])}</mark>{esc(text[b:])}'


def _chars(start: int, end: int) -> str:
    return f"chars {start}–{end}"


def _source_line(title: str, date: str | None, source: str, page: int | None, where: str) -> str:
    bits = [f'<span class="docqa-title">{esc(title or source)}</span>']
    if date:
        bits.append(f'<span class="docqa-date">{esc(date)}</span>')
    bits.append(f'<code class="docqa-file">{esc(source)}</code>')
    if page:
        bits.append(f'<span class="docqa-page">page {esc(page)}</span>')
    bits.append(f'<span class="docqa-where">{esc(where)}</span>')
    return " · ".join(bits)


# (citation, its passage) -> the cited page with the quote highlighted, as HTML, or "".
PageViewer = Callable[[Citation, "Passage | None"], str]


def citation_html(citation: Citation, passage: Passage | None, page_view: str = "") -> str:
    """One ``[n]``: its provenance, its passage with the quote highlighted and, for a PDF or
    image, ``page_view`` (the page with the quote highlighted, already escaped)."""
    text = citation.passage or (passage.text if passage else citation.quote)
    span = highlight_span(citation, passage)
    weak = (
        ""
        if citation.supported
        else f' <span class="docqa-weak" title="support {citation.support:.2f}">weak support</span>'
    )
    head = _source_line(
        citation.title,
        citation.date,
        citation.source,
        citation.page,
        _chars(citation.start, citation.end),
    )
    return (
        f'<div class="docqa-source" data-n="{citation.n}">'
        f'<div class="docqa-source-head"><span class="docqa-n">[{citation.n}]</span> '
        f"{head}{weak}</div>"
        f'<div class="docqa-passage">{highlighted_passage(text, span)}</div>{page_view}</div>'
    )


def sources_html(answer: Answer | None, page_views: PageViewer | None = None) -> str:
    """The sources panel for an answer: each ``[n]`` with its provenance and its passage, the
    cited sentence highlighted (and, given ``page_views``, for a PDF or image, the page with
    it highlighted). A declined answer lists the closest passages instead."""
    if answer is None:
        return (
            '<div class="docqa-sources docqa-empty">Ask a question: each citation [n] of '
            "the answer appears here with its passage.</div>"
        )
    passages = answer.trace.passages
    if answer.declined:
        items = "".join(
            f'<div class="docqa-source docqa-closest">'
            f'<div class="docqa-source-head">'
            f"{_source_line(passage_label(p), p.date, p.source, p.page, _chars(p.start, p.end))}"
            f'</div><div class="docqa-passage">{esc(p.text)}</div></div>'
            for p in passages[:3]
        )
        intro = (
            "No passage supports an answer. The closest passages:"
            if items
            else "No passage supports an answer, and none came close."
        )
        return f'<div class="docqa-sources"><p class="docqa-intro">{intro}</p>{items}</div>'
    if not answer.citations:
        return '<div class="docqa-sources docqa-empty">This answer cites no passage.</div>'
    items = ""
    for c in answer.citations:
        passage = passage_for(c, passages)
        items += citation_html(c, passage, page_views(c, passage) if page_views else "")
    return f'<div class="docqa-sources">{items}</div>'


def working_html(message: str = "Searching the documents…") -> str:
    return f'<div class="docqa-sources docqa-empty">{esc(message)}</div>'


# ---- the retrieval trace


def _score(value: float | None, rank: int | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f} (#{rank})" if rank is not None else f"{value:.3f}"


def trace_html(answer: Answer | None) -> str:
    """The standalone query, for a declined answer why it was declined (the answer itself
    only says the documents don't say), the retrieved passages with their scores and ranks,
    the timings: why the answer came out as it did."""
    if answer is None:
        return '<div class="docqa-trace docqa-empty">No question asked yet.</div>'
    t = answer.trace
    declined = ""
    if answer.declined:
        reason = decline_reason(t.notes) or "no reason recorded"
        declined = f'<p class="docqa-declined-why"><b>Declined:</b> {esc(reason)}</p>'
    rows = "".join(
        "<tr>"
        f"<td>{p.n}</td>"
        f'<td><span class="docqa-title">{esc(p.title or p.source)}</span><br>'
        f'<code class="docqa-file">{esc(p.location())}</code></td>'
        f"<td>{_score(p.dense_score, p.dense_rank)}</td>"
        f"<td>{_score(p.bm25_score, p.bm25_rank)}</td>"
        f"<td>{p.fused_score:.4f}</td>"
        "</tr>"
        for p in t.passages
    )
    timings = ", ".join(f"{esc(stage)} {ms:.0f} ms" for stage, ms in t.timings_ms.items())
    notes = "".join(f"<li>{esc(n)}</li>" for n in t.notes if not n.startswith(DECLINED_NOTE))
    return (
        '<div class="docqa-trace">'
        f"<p><b>Standalone query:</b> {esc(t.standalone_query)}</p>"
        f"{declined}"
        f"<p><b>Backend:</b> {esc(answer.backend)}</p>"
        '<table class="docqa-trace-table"><thead><tr><th>n</th><th>passage</th>'
        "<th>dense (rank)</th><th>BM25 (rank)</th><th>fused</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<p><b>Timings:</b> {timings or '—'}</p>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + "</div>"
    )


# ---- the documents tab


def documents_rows(records: Iterable[Any], folder_names: dict[str, str]) -> list[list[Any]]:
    """One row per ingested document (``DocRecord``s); ``folder_names`` maps a root folder
    to the name shown for it. Plain values: the table component escapes them."""
    rows = []
    for r in records:
        when = datetime.fromtimestamp(r.ingested_at).strftime("%Y-%m-%d %H:%M")
        folder = folder_names.get(r.root, r.root)
        rows.append([r.title, r.date or "", r.source, folder, r.n_chunks, when])
    return rows


APP_CSS = """
.docqa-sources { display: flex; flex-direction: column; gap: 10px; }
.docqa-source { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 8px 10px; background: var(--background-fill-secondary); }
.docqa-source-head { font-size: 0.9em; margin-bottom: 6px; }
.docqa-n { font-weight: 700; color: var(--color-accent); }
.docqa-title { font-weight: 600; }
.docqa-date, .docqa-page, .docqa-where { color: var(--body-text-color-subdued); }
.docqa-passage { white-space: pre-wrap; font-size: 0.9em; line-height: 1.45;
  max-height: 16em; overflow-y: auto; }
mark.docqa-quote { background: #ffe58a; color: #1f2328; padding: 0 1px; border-radius: 2px; }
.docqa-weak { color: #b35900; font-weight: 600; }
.docqa-empty, .docqa-intro { color: var(--body-text-color-subdued); }
.docqa-trace { font-size: 0.85em; }
.docqa-trace-table { width: 100%; border-collapse: collapse; }
.docqa-trace-table th, .docqa-trace-table td { border-bottom: 1px solid var(--border-color-primary);
  padding: 3px 6px; text-align: left; vertical-align: top; }
mark.docqa-unsupported { background: #ffd7d5; color: #6e1111; border-bottom: 2px dotted #c62828; }
.docqa-badge { display: inline-block; font-size: 0.8em; font-weight: 700; padding: 1px 8px;
  border-radius: 10px; }
.docqa-declined { background: #e8e8ec; color: #44475a; border: 1px solid #b9bbc6; }
.docqa-error { background: #ffd7d5; color: #6e1111; }
.docqa-pageview { margin: 8px 0 0; }
.docqa-page-frame { position: relative; display: inline-block; max-width: 100%;
  border: 1px solid var(--border-color-primary); }
.docqa-page-img { display: block; width: 100%; height: auto; }
.docqa-page-hl { position: absolute; background: rgba(255, 214, 0, 0.35);
  outline: 2px solid #e0a800; border-radius: 2px; pointer-events: none; }
.docqa-pageview figcaption { font-size: 0.8em; color: var(--body-text-color-subdued); }
.docqa-note { display: block; font-size: 0.85em; color: var(--body-text-color-subdued); }
.message:has(.docqa-declined), .bot:has(.docqa-declined) { font-style: italic;
  border-left: 4px solid #9a9cae !important; }
"""
