"""Question + passage windows for the reader, the same at training and at answer time:
``[CLS] question [SEP] passage window [SEP]`` with token-to-character offsets into the passage.

Written over the ``tokenizers`` library (no torch, no transformers) so the chat process reads
passages exactly as the training run did."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MAX_TOKENS = 192
STRIDE = 64
MAX_QUESTION_TOKENS = 48


@dataclass(frozen=True)
class Window:
    """One model input: token ids, and for each token the (start, end) characters it covers in
    the passage, or None for the question and special tokens."""

    ids: list[int]
    type_ids: list[int]
    offsets: list[tuple[int, int] | None]
    passage: int  # which passage of the batch this window reads

    @property
    def context_start(self) -> int:
        """Index of the first passage token."""
        return self.type_ids.index(1)


def load_tokenizer(path: Path) -> Tokenizer:
    """The WordPiece tokenizer from a ``tokenizer.json``, without its own truncation/padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class Featurizer:
    """Cuts passages into overlapping windows that each fit ``max_tokens`` with the question."""

    def __init__(
        self, tokenizer: Tokenizer, max_tokens: int = MAX_TOKENS, stride: int = STRIDE
    ) -> None:
        if max_tokens < MAX_QUESTION_TOKENS + 16:
            raise ValueError(
                f"max_tokens must be at least {MAX_QUESTION_TOKENS + 16}, got {max_tokens}"
            )
        if not 0 <= stride < max_tokens // 2:
            raise ValueError(f"stride must be in [0, {max_tokens // 2}), got {stride}")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.stride = stride
        self.cls_id = tokenizer.token_to_id("[CLS]")
        self.sep_id = tokenizer.token_to_id("[SEP]")

    def reads_whole(self, question: str) -> bool:
        """Whether the question fits the reader's question budget (longer ones are cut)."""
        return len(self.tokenizer.encode(question, add_special_tokens=False).ids) <= (
            MAX_QUESTION_TOKENS
        )

    def question_ids(self, question: str) -> list[int]:
        ids = self.tokenizer.encode(question, add_special_tokens=False).ids
        return ids[:MAX_QUESTION_TOKENS]

    def passage_tokens(self, passage: str) -> tuple[list[int], list[tuple[int, int]]]:
        encoding = self.tokenizer.encode(passage, add_special_tokens=False)
        return list(encoding.ids), [tuple(o) for o in encoding.offsets]

    def windows(
        self,
        question_ids: list[int],
        passage_ids: list[int],
        passage_offsets: list[tuple[int, int]],
        passage: int = 0,
    ) -> list[Window]:
        """Every window of the passage, each overlapping the next by ``stride`` tokens."""
        room = self.max_tokens - len(question_ids) - 3
        head = [self.cls_id, *question_ids, self.sep_id]
        head_offsets: list[tuple[int, int] | None] = [None] * len(head)
        out: list[Window] = []
        start = 0
        while True:
            ids = passage_ids[start : start + room]
            offsets = passage_offsets[start : start + room]
            out.append(
                Window(
                    ids=[*head, *ids, self.sep_id],
                    type_ids=[0] * len(head) + [1] * (len(ids) + 1),
                    offsets=[*head_offsets, *offsets, None],
                    passage=passage,
                )
            )
            if start + room >= len(passage_ids):
                return out
            start += room - self.stride

    def featurize(self, question: str, passages: list[str]) -> list[Window]:
        """All windows of all passages for one question, in passage order."""
        q = self.question_ids(question)
        out: list[Window] = []
        for index, text in enumerate(passages):
            ids, offsets = self.passage_tokens(text)
            out.extend(self.windows(q, ids, offsets, passage=index))
        return out
