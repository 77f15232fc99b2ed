"""Split a document's text into token-bounded chunks that know their character offsets."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.config import MODEL_WINDOW_TOKENS
from ingest.embeddings import make_tokenizer

logger = logging.getLogger(__name__)

# Paragraphs first, then lines, sentences, clauses, words, characters.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ": ", ", ", " ", ""]
SPLITTER_VERSION = "1"


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int


class TokenSplitter:
    """RecursiveCharacterTextSplitter measured in the embedding model's own tokens.

    LangChain's ``add_start_index`` assumes the overlap is measured in characters, so with a
    token length function it can look for a chunk past where it starts; offsets are found here
    instead by searching forward from the previous chunk's start.
    """

    def __init__(self, model: str, chunk_size: int, chunk_overlap: int) -> None:
        self._model = model
        self._tokenizer = make_tokenizer(model)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            length_function=self.count_tokens,
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def split(self, text: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        start = -1
        for piece in self._pieces(text):
            found = text.find(piece, start + 1)
            if found < 0:  # cannot happen for stripped substrings; keep offsets honest anyway
                raise AssertionError(f"chunk not found in text after offset {start}")
            start = found
            chunks.append(Chunk(len(chunks), piece, start, start + len(piece)))
        return chunks

    def _pieces(self, text: str) -> list[str]:
        out: list[str] = []
        for piece in self._splitter.split_text(text):
            if self.count_tokens(piece) <= MODEL_WINDOW_TOKENS:
                out.append(piece)
                continue
            # The splitter sums piece lengths; a merged chunk can still exceed the window.
            logger.debug("re-splitting a %d-token chunk", self.count_tokens(piece))
            half = max(16, self.chunk_size // 2)
            smaller = TokenSplitter(self._model, half, min(self.chunk_overlap, half // 4))
            out.extend(smaller._pieces(piece))
        return out
