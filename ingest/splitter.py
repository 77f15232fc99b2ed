"""Split a document's text into token-bounded chunks that know their character offsets."""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

from ingest.config import MODEL_WINDOW_TOKENS
from ingest.embeddings import make_tokenizer

logger = logging.getLogger(__name__)

# Paragraphs first, then lines, sentences, clauses, words, characters.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ": ", ", ", " ", ""]
# Recorded in the index fingerprint: bump it when the same text would chunk differently.
# "2": chunk offsets are tracked, not searched for (v1 mislocated chunks of repetitive text).
SPLITTER_VERSION = "2"

_Span = tuple[int, int]


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int


class TokenSplitter:
    """Recursive separator splitting measured in the embedding model's own tokens.

    The algorithm is LangChain's ``RecursiveCharacterTextSplitter`` (separators kept at the
    end of each piece, chunks stripped of surrounding whitespace), but it works on
    ``(start, end)`` offsets into the text instead of on copied strings. Searching the text
    for each chunk afterwards cannot place chunks of repetitive text (repeated paragraphs,
    page footers, a long unbroken token) correctly: the search finds an earlier copy, so
    offsets, and the pages derived from them, drift.

    Every chunk is at most ``chunk_size`` tokens (and never more than the model window).
    """

    def __init__(self, model: str, chunk_size: int, chunk_overlap: int) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if not 0 <= chunk_overlap <= chunk_size:
            raise ValueError(
                f"chunk_overlap must be between 0 and chunk_size ({chunk_size}), "
                f"got {chunk_overlap}"
            )
        self._model = model
        self._tokenizer = make_tokenizer(model)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._doc: _TokenOffsets | None = None

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def split(self, text: str) -> list[Chunk]:
        self._doc = _TokenOffsets(self._tokenizer, text)
        try:
            spans = self._spans(text, 0, len(text), self.chunk_size, self.chunk_overlap)
        finally:
            self._doc = None
        return [Chunk(i, text[a:b], a, b) for i, (a, b) in enumerate(spans)]

    def _count(self, text: str, start: int, end: int) -> int:
        """Tokens of ``text[start:end]``: from the whole document's tokens when no token
        crosses either end (tokenised once per document, not once per level), else by
        tokenising the span. Both give the same count: the tokenizer's pre-tokenizer splits
        at whitespace and punctuation, so a span's tokens are the document's inside it."""
        doc = self._doc
        if doc is not None:
            counted = doc.count(start, end)
            if counted is not None:
                return counted
        return self.count_tokens(text[start:end])

    def _spans(self, text: str, start: int, end: int, size: int, overlap: int) -> list[_Span]:
        limit = min(size, MODEL_WINDOW_TOKENS)
        out: list[_Span] = []
        for a, b in self._split(text, start, end, SEPARATORS, size, overlap):
            if size <= 1 or b - a <= 1 or self._count(text, a, b) <= limit:
                out.append((a, b))
                continue
            # Pieces are measured one by one; joined, they can tokenize a little longer.
            logger.debug("re-splitting a %d-token chunk", self.count_tokens(text[a:b]))
            half = size // 2
            out.extend(self._spans(text, a, b, half, min(overlap, half // 4)))
        return out

    def _split(
        self, text: str, start: int, end: int, separators: list[str], size: int, overlap: int
    ) -> list[_Span]:
        """Chunk spans of ``text[start:end]``, split at the first separator found in it."""
        separator, finer = separators[-1], []
        for i, sep in enumerate(separators):
            if not sep:
                separator, finer = sep, []
                break
            if text.find(sep, start, end) >= 0:
                separator, finer = sep, separators[i + 1 :]
                break
        out: list[_Span] = []
        small: list[tuple[int, int, int]] = []  # (start, end, tokens) of pieces under size
        for a, b in _pieces(text, start, end, separator):
            n = self._count(text, a, b)
            if n < size:
                small.append((a, b, n))
                continue
            if small:
                out.extend(self._merge(text, small, size, overlap))
                small = []
            if finer:
                out.extend(self._split(text, a, b, finer, size, overlap))
            elif (span := _strip(text, a, b)) is not None:
                out.append(span)
        if small:
            out.extend(self._merge(text, small, size, overlap))
        return out

    def _merge(
        self, text: str, pieces: list[tuple[int, int, int]], size: int, overlap: int
    ) -> list[_Span]:
        """Join neighbouring pieces into chunks of up to ``size`` tokens; each chunk starts
        with up to ``overlap`` tokens of pieces from the end of the one before."""
        out: list[_Span] = []
        window: deque[tuple[int, int, int]] = deque()
        total = 0
        for a, b, n in pieces:
            if window and total + n > size:
                if (span := _strip(text, window[0][0], window[-1][1])) is not None:
                    out.append(span)
                while window and (total > overlap or (total + n > size and total > 0)):
                    total -= window.popleft()[2]
            window.append((a, b, n))
            total += n
        if window and (span := _strip(text, window[0][0], window[-1][1])) is not None:
            out.append(span)
        return out


class _TokenOffsets:
    """A document's tokens as sorted character offsets, to count the tokens of a span."""

    def __init__(self, tokenizer: object, text: str) -> None:
        offsets = tokenizer.encode(text, add_special_tokens=False).offsets  # type: ignore[attr-defined]
        self.starts = [s for s, _ in offsets]
        self.ends = [e for _, e in offsets]
        self.usable = all(
            a <= b for a, b in zip(self.starts, self.starts[1:], strict=False)
        ) and all(a <= b for a, b in zip(self.ends, self.ends[1:], strict=False))

    def _clean(self, at: int) -> int | None:
        """The index of the first token starting at or after ``at``, if no token crosses it."""
        i = bisect_left(self.starts, at)
        if i > 0 and self.ends[i - 1] > at:
            return None
        return i

    def count(self, start: int, end: int) -> int | None:
        if not self.usable:
            return None
        first, stop = self._clean(start), self._clean(end)
        if first is None or stop is None:
            return None
        return stop - first


def _pieces(text: str, start: int, end: int, separator: str) -> list[_Span]:
    """Consecutive spans covering ``text[start:end]``, each ending with ``separator``
    (except perhaps the last); single characters for the empty separator."""
    if not separator:
        return [(i, i + 1) for i in range(start, end)]
    out: list[_Span] = []
    pos = start
    while (found := text.find(separator, pos, end)) >= 0:
        out.append((pos, found + len(separator)))
        pos = found + len(separator)
    if pos < end:
        out.append((pos, end))
    return out


def _strip(text: str, start: int, end: int) -> _Span | None:
    """``(start, end)`` narrowed to exclude surrounding whitespace; None if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
