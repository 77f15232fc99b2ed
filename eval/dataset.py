"""Eval sets: JSONL question files, loaded into ``EvalCase`` values and validated on load.

One JSON object a line (blank lines are skipped)::

    {"id": "q1", "question": "...", "answers": ["..."], "answerable": true,
     "evidence": "a verbatim quote", "evidence_doc_ids": ["file-stem"],
     "history": [{"role": "user", "content": "..."}, ...], "type": "...",
     "corpus": "seeds"}

``answers`` is empty exactly when ``answerable`` is false. ``evidence`` (a quote, or a list
of quotes) and ``evidence_doc_ids`` (file stems) are both optional; a question with neither
is left out of the retrieval and citation metrics. ``corpus`` names the document collection
a question was written against ("seeds", "squad_v2", "multihop_rag"), so one set can mix
corpora and ``python -m eval --corpus NAME`` asks only one's questions (a question without a
corpus is always asked). Every error names the file and line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REQUIRED = ("id", "question", "answers", "answerable")
OPTIONAL = ("evidence", "evidence_doc_ids", "history", "type", "corpus")
ROLES = ("user", "assistant")


class DatasetError(ValueError):
    """An eval set we cannot use; the message names the file, the line and the field."""


@dataclass(frozen=True)
class EvalCase:
    id: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    evidence: tuple[str, ...] = ()
    evidence_doc_ids: tuple[str, ...] = ()
    history: tuple[dict[str, str], ...] = ()
    type: str = ""
    corpus: str = ""
    line: int = 0

    @property
    def has_evidence(self) -> bool:
        return bool(self.evidence or self.evidence_doc_ids)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "question": self.question,
            "answers": list(self.answers),
            "answerable": self.answerable,
        }
        if self.evidence:
            out["evidence"] = self.evidence[0] if len(self.evidence) == 1 else list(self.evidence)
        if self.evidence_doc_ids:
            out["evidence_doc_ids"] = list(self.evidence_doc_ids)
        if self.history:
            out["history"] = [dict(t) for t in self.history]
        if self.type:
            out["type"] = self.type
        if self.corpus:
            out["corpus"] = self.corpus
        return out


def _strings(where: str, name: str, value: Any, *, allow_empty: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetError(f"{where}: {name!r} must be a list of strings, got {value!r}")
    if any(not v.strip() for v in value):
        raise DatasetError(f"{where}: {name!r} has an empty string")
    if not allow_empty and not value:
        raise DatasetError(f"{where}: {name!r} must not be empty")
    return tuple(value)


def _history(where: str, value: Any) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list):
        raise DatasetError(f"{where}: 'history' must be a list of turns, got {value!r}")
    turns = []
    for i, turn in enumerate(value):
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ROLES
            or not isinstance(turn.get("content"), str)
            or not turn["content"].strip()
        ):
            raise DatasetError(
                f'{where}: \'history\' turn {i} must be {{"role": "user"|"assistant", '
                f'"content": "..."}}, got {turn!r}'
            )
        turns.append({"role": turn["role"], "content": turn["content"]})
    return tuple(turns)


def parse_case(obj: Any, where: str) -> EvalCase:
    """Validate one decoded line; ``where`` ("file:line") prefixes every error."""
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise DatasetError(f"{where}: missing {', '.join(repr(k) for k in missing)}")
    unknown = sorted(set(obj) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        logger.warning("%s: ignoring unknown field(s) %s", where, ", ".join(unknown))
    qid = obj["id"]
    if isinstance(qid, bool) or not isinstance(qid, str | int) or not str(qid).strip():
        raise DatasetError(f"{where}: 'id' must be a non-empty string, got {qid!r}")
    question = obj["question"]
    if not isinstance(question, str) or not question.strip():
        raise DatasetError(f"{where}: 'question' must be a non-empty string, got {question!r}")
    answerable = obj["answerable"]
    if not isinstance(answerable, bool):
        raise DatasetError(f"{where}: 'answerable' must be true or false, got {answerable!r}")
    answers = _strings(where, "answers", obj["answers"])
    if answerable and not answers:
        raise DatasetError(f"{where}: an answerable question needs at least one of 'answers'")
    if not answerable and answers:
        raise DatasetError(f"{where}: an unanswerable question must have empty 'answers'")
    evidence_raw = obj.get("evidence", [])
    if isinstance(evidence_raw, str):
        evidence_raw = [evidence_raw]
    if not isinstance(evidence_raw, list):
        raise DatasetError(
            f"{where}: 'evidence' must be a quote or a list of quotes, got {evidence_raw!r}"
        )
    evidence = _strings(where, "evidence", evidence_raw)
    doc_ids = _strings(where, "evidence_doc_ids", obj.get("evidence_doc_ids", []))
    kind = obj.get("type", "")
    if not isinstance(kind, str):
        raise DatasetError(f"{where}: 'type' must be a string, got {kind!r}")
    corpus = obj.get("corpus", "")
    if not isinstance(corpus, str) or corpus != corpus.strip():
        raise DatasetError(
            f"{where}: 'corpus' must be a corpus name (a string without surrounding spaces), "
            f"got {corpus!r}"
        )
    return EvalCase(
        id=str(qid),
        question=question,
        answers=answers,
        answerable=answerable,
        evidence=evidence,
        evidence_doc_ids=doc_ids,
        history=_history(where, obj.get("history", [])),
        type=kind,
        corpus=corpus,
    )


def select_corpus(cases: list[EvalCase], corpus: str) -> tuple[list[EvalCase], int]:
    """The cases of ``corpus`` and those naming no corpus, and how many were left out."""
    kept = [c for c in cases if not c.corpus or c.corpus == corpus]
    return kept, len(cases) - len(kept)


def corpora(cases: list[EvalCase]) -> list[str]:
    """The corpus names the cases use, sorted."""
    return sorted({c.corpus for c in cases if c.corpus})


def load_set(path: Path | str) -> list[EvalCase]:
    """Read and validate an eval set; raises ``DatasetError`` naming the first bad line."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a folder, expected a .jsonl file") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason})") from None
    cases: list[EvalCase] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        case = parse_case(obj, where)
        if case.id in seen:
            raise DatasetError(f"{where}: duplicate id {case.id!r} (first on line {seen[case.id]})")
        seen[case.id] = lineno
        cases.append(replace(case, line=lineno))
    if not cases:
        raise DatasetError(f"{path}: no questions in the file")
    return cases
