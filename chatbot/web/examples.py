"""Example questions under the chat, made from the selected collection's own documents: a
section heading ("What does the handbook say about sick leave?"), a summary request
("Summarise “Employee Handbook”."), or a phrase the text keeps using ("What does the
document say about the death penalty?"), from distinct documents where there are several.

No model is asked: the questions come from the documents' titles and the text of their first
chunks (one read of the index), in a few milliseconds; ``ChatService`` keeps them until the
index changes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatbot.sentences import STOPWORDS

if TYPE_CHECKING:
    from ingest import DocIndex

MAX_EXAMPLES = 4
DOCS_READ = 8  # the documents (newest first) examples are drawn from
CHUNKS_READ = 3  # the first chunks of each, whose text is read
MAX_TITLE_WORDS = 8
MAX_QUESTION_CHARS = 110

_MD_HEADING_RE = re.compile(r"^ {0,3}#{1,6}\s+(.+?)(?:\s+#+)?\s*$")
_NUMBERING_RE = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVXLC]+\.|[A-Z]\.|§+\s*\d+(?:\.\d+)*)\s+")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]")
_QUESTION_START_RE = re.compile(
    r"^(?:what|who|whom|whose|when|where|why|how|which|can|could|do|does|did|is|are|was|"
    r"were|will|should|may|must|has|have)\b",
    re.IGNORECASE,
)
# Headings that name a part of a document, not a subject to ask about.
_GENERIC_HEADINGS = frozenset(
    """
    introduction contents table of contents overview summary abstract conclusion conclusions
    references bibliography appendix notes background preface foreword index glossary
    acknowledgements acknowledgments about further reading see also
    """.split()
)
# Words too vague to make a phrase worth asking about ("most heinous", "greater use").
_VAGUE = frozenset(
    """
    most more many much less least greater other others new last next first recent several
    including involving according following certain various number lot lots way ways
    """.split()
)
# Words in a title that say what kind of document it is: "the handbook" reads better in a
# question than its full title.
_KIND_RE = re.compile(
    r"\b(handbook|policy|guide|guidelines|manual|report|contract|agreement|memo|minutes|"
    r"charter|proposal|plan|specification|faq|newsletter|brochure|procedures?|regulations|"
    r"rulebook|playbook|whitepaper|article|paper|letter|statement|terms)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DocSample:
    """What the examples are made from for one document."""

    source: str
    title: str  # "" when the title is only the text's opening words
    opening: str  # the text's opening words (for a document without a title)
    text: str  # the text of its first chunks


def collection_examples(index: DocIndex, limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to ``limit`` example questions about the documents in ``index`` ([] when it holds
    none)."""
    return example_questions(document_samples(index), limit)


def document_samples(index: DocIndex, docs: int = DOCS_READ) -> list[DocSample]:
    """The newest ``docs`` documents of ``index`` with the text of their first chunks (one
    read for all of them)."""
    records = sorted(index.documents(), key=lambda r: (-r.ingested_at, r.root, r.source))[:docs]
    ids = [i for r in records for i in r.chunk_ids[:CHUNKS_READ]]
    chunks = {c.id: c for c in index.get(ids)} if ids else {}
    samples = []
    for r in records:
        got = sorted(
            (chunks[i] for i in r.chunk_ids[:CHUNKS_READ] if i in chunks),
            key=lambda c: int(c.metadata.get("start", 0)),
        )
        if not got:
            continue
        excerpt = bool(got[0].metadata.get("title_is_excerpt"))
        title = "" if excerpt else " ".join(r.title.split())
        opening = " ".join(r.title.rstrip("…").split()) if excerpt else ""
        text = "\n\n".join(c.text for c in got)
        samples.append(DocSample(r.source, title, opening, text))
    return samples


def example_questions(samples: Sequence[DocSample], limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to ``limit`` questions, taking one from each document in turn (so several
    documents give questions about several), each document's best first."""
    refs = _references(samples)
    single = len(samples) == 1
    per_doc = [_questions(s, ref, single) for s, ref in zip(samples, refs, strict=True)]
    out: list[str] = []
    seen: set[str] = set()
    for rank in range(max((len(q) for q in per_doc), default=0)):
        for questions in per_doc:
            if rank < len(questions) and questions[rank].casefold() not in seen:
                seen.add(questions[rank].casefold())
                out.append(questions[rank])
                if len(out) == limit:
                    return out
    return out


# ---- one document's questions


def _questions(s: DocSample, ref: str, single: bool) -> list[str]:
    """A heading question, a summary request, then the other heading questions and a
    question about the phrase the text repeats most."""
    verb = "do" if ref == "the documents" else "does"
    about = [
        h if h.endswith("?") else f"What {verb} {ref} say about {h}?"
        for h in headings(s.text, s.title)
    ]
    about += [f"What {verb} {ref} say about {p}?" for p in repeated_phrases(s.text)]
    if s.title:
        summary = f"Summarise “{_shorten(s.title)}”."
    elif single:
        summary = "Summarise the document."
    else:
        summary = f"Summarise the text that begins “{_shorten(s.opening, 6)}”."
    questions = [*about[:1], summary, *about[1:]]
    return [q for q in questions if len(q) <= MAX_QUESTION_CHARS]


def _references(samples: Sequence[DocSample]) -> list[str]:
    """How each document's questions name it: "the handbook" (a kind its title names and no
    other document's does), its quoted title when there are several documents, else "the
    document" (the only one) or "the documents"."""
    kinds = [_kind(s.title) for s in samples]
    counts = Counter(k for k in kinds if k)
    refs = []
    for s, kind in zip(samples, kinds, strict=True):
        if kind and counts[kind] == 1:
            refs.append(f"the {kind}")
        elif len(samples) == 1:
            refs.append("the document")
        elif s.title:
            refs.append(f"“{_shorten(s.title)}”")
        else:
            refs.append("the documents")
    return refs


def _kind(title: str) -> str:
    m = _KIND_RE.search(title)
    if not m:
        return ""
    word = m.group(1)
    return word.upper() if word.lower() == "faq" else word.lower()


def _shorten(text: str, words: int = MAX_TITLE_WORDS) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")


def headings(text: str, title: str = "") -> list[str]:
    """The section headings in ``text`` as topics to ask about ("sick leave"), or as they
    are when they are questions: Markdown headings, and short one-line paragraphs with no
    closing punctuation followed by more text (headings of HTML, DOCX and PDF text). The
    document's title and headings such as "Introduction" are left out."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    found: list[str] = []
    for i, paragraph in enumerate(paragraphs):
        lines = paragraph.splitlines()
        marked = [m.group(1) for line in lines if (m := _MD_HEADING_RE.match(line))]
        if marked:
            candidates = marked
        elif len(lines) == 1 and i + 1 < len(paragraphs) and _looks_like_heading(lines[0]):
            candidates = lines
        else:
            continue
        for raw in candidates:
            topic = _topic(raw)
            if topic and topic.casefold() != title.casefold() and topic not in found:
                found.append(topic)
    return found


def _looks_like_heading(line: str) -> bool:
    words = line.split()
    return (
        1 <= len(words) <= 6
        and line[0].isupper()
        and line[-1] not in ".,;:!…”\"')"
        and not any(c in line for c in "|=<>{}[]/\\@")
        and any(len(w) >= 3 and w.isalpha() for w in words)
    )


def _topic(raw: str) -> str:
    """A heading as a topic: numbering, emphasis and a closing colon removed, sentence case
    or all capitals lower-cased; "" when it names no subject."""
    text = re.sub(r"[*_`]+", "", raw).strip()
    text = _NUMBERING_RE.sub("", text).strip().rstrip(":").strip()
    words = text.split()
    if not words or len(words) > MAX_TITLE_WORDS or len(text) > 60:
        return ""
    if text.endswith("?"):
        return text if len(words) >= 3 and _QUESTION_START_RE.match(text) else ""
    if " ".join(words).casefold() in _GENERIC_HEADINGS:
        return ""
    if not any(len(w) >= 3 and any(c.isalpha() for c in w) for w in words):
        return ""
    letters = [w for w in words if any(c.isalpha() for c in w)]
    if len(letters) > 1 and all(w.isupper() for w in letters):  # "SICK LEAVE"
        return text.lower()
    capitalised = [_capitalised(w) for w in words]
    if all(capitalised[i] or words[i].lower() in STOPWORDS for i in range(len(words))):
        return " ".join(w.lower() if _capitalised(w) else w for w in words)  # "Sick Leave"
    if capitalised[0]:  # "Sick leave", "Working in Germany"
        return " ".join([words[0].lower(), *words[1:]])
    return text


def _capitalised(word: str) -> bool:
    """Capitalised and otherwise lower case ("Leave", not "PTO" or "iPhone")."""
    letters = [c for c in word if c.isalpha()]
    return len(letters) > 1 and letters[0].isupper() and all(c.islower() for c in letters[1:])


def repeated_phrases(text: str, most: int = 2, least: int = 2) -> list[str]:
    """The two-word phrases of content words that ``text`` repeats most (each at least
    ``least`` times; the most repeated first, then the earliest), no two sharing a word:
    with "the" before one the text mostly writes so ("the death penalty"), capitalised where
    the text capitalises it ("Justice Department")."""
    tokens = [(m.group(0), m.start()) for m in _WORD_RE.finditer(text)]
    counts: Counter[tuple[str, str]] = Counter()
    forms: dict[tuple[str, str], Counter[str]] = {}
    with_the: Counter[tuple[str, str]] = Counter()
    for i in range(len(tokens) - 1):
        (a, at_a), (b, at_b) = tokens[i], tokens[i + 1]
        key = (a.lower(), b.lower())
        if any(w in STOPWORDS or w in _VAGUE or len(w) < 3 for w in key):
            continue
        if not text[at_a + len(a) : at_b].isspace():
            continue  # punctuation between them
        counts[key] += 1
        forms.setdefault(key, Counter())[f"{a} {b}"] += 1
        if i > 0 and tokens[i - 1][0].lower() == "the":
            with_the[key] += 1
    phrases: list[str] = []
    used: set[str] = set()
    for key, n in counts.most_common():  # ties stay in order of first appearance
        if len(phrases) == most or n < least:
            break
        if used & set(key):
            continue
        used.update(key)
        form = forms[key].most_common(1)[0][0]
        if not all(_capitalised(w) or w.isupper() for w in form.split()):
            form = form.lower()
        phrases.append(f"the {form}" if with_the[key] * 2 >= n else form)
    return phrases
