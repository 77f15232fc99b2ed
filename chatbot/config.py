"""The chatbot's settings: the index's settings plus retrieval and answering knobs. (The web
app's own settings are ``chatbot.web.config.WebSettings``.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest import IngestSettings, SettingsError
from ingest.settings import EnvSettings
from ingest.settings import described as _field


@dataclass(frozen=True)
class ChatSettings(EnvSettings):
    """Every knob of retrieval and answering; ``DOCQA_<FIELD>`` overrides each one."""

    index: IngestSettings = field(
        default_factory=IngestSettings, metadata={"description": "The index to read."}
    )
    k: int = _field(5, "Passages given to the answerer (and numbered [1]..[k]).")
    fetch_k: int = _field(30, "Candidates taken from each retriever before fusion.")
    per_doc_cap: int = _field(2, "At most this many passages per document before backfilling.")
    compound_k: int = _field(
        8,
        "Passages for a question that names several articles, sources or events (one per "
        "document first).",
    )
    rrf_k: int = _field(60, "Reciprocal rank fusion constant.")
    dense_weight: float = _field(1.0, "Weight of the dense ranking in fusion.")
    bm25_weight: float = _field(1.0, "Weight of the BM25 ranking in fusion.")
    answerer: str = _field(
        "extractive",
        "'extractive' (offline default), 'provider:model' for a chat model "
        "(e.g. 'openai:gpt-4o-mini', 'ollama:llama3.1'), or 'fake'.",
    )
    reader: str = _field(
        "packaged",
        "How the offline answerer decides: 'packaged' (the reader model shipped in "
        "chatbot/reader/model reads the question with each passage: it declines below "
        "reader_threshold, answers with its best span from reader_confident, and leaves the "
        "cases in between to the rules), 'rules' (word coverage and refusal rules only), or a "
        "folder holding reader.json and its ONNX file.",
    )
    reader_threshold: str = _field(
        "",
        "The reader declines when no passage's span beats its no-answer score by this margin "
        "(span score minus no-answer score); empty: the model's calibrated value (reader.json).",
    )
    reader_confident: str = _field(
        "",
        "From this margin up the reader answers with its span; between reader_threshold and "
        "this, the rules answer or decline. Empty: the model's calibrated value.",
    )
    reader_threads: int = _field(
        0,
        "CPU threads of the reader model (0: ONNX Runtime's default, one per core: ~60 ms "
        "for five 170-token passages on 2 cores, ~120 ms on one).",
    )
    llm_base_url: str = _field("", "Base URL of an OpenAI-compatible server (vLLM, llama.cpp).")
    llm_api_key: str = _field("", "API key for the chat model, if it needs one.")
    llm_timeout: float = _field(60.0, "Seconds before a chat-model request is abandoned.")
    torch_threads: int = _field(
        1,
        "CPU threads of the embedding model in the chat process, on ONNX Runtime or torch "
        "(0: the library's default). One thread keeps a single query's embedding at a few "
        "ms even when the cores are busy; with two, a busy core stalls it for up to ~0.5 s.",
    )
    max_question_chars: int = _field(2000, "Longer questions are refused with a message.")
    min_dense: float = _field(
        0.20,
        "Off-topic unless a passage has at least this cosine similarity, or the question's "
        "words pass min_lexical, or a sentence passes min_sentence.",
    )
    min_lexical: float = _field(
        0.5,
        "Off-topic unless one passage with its document's title, source and date holds at "
        "least this share of the question's words (IDF over the whole index, misspellings "
        "mended), or min_dense or min_sentence says it is on topic (0..1).",
    )
    min_sentence: float = _field(
        0.35,
        "Off-topic unless a sentence of the top passages has at least this cosine similarity "
        "to the question, or min_dense or min_lexical says it is on topic.",
    )
    min_support: float = _field(
        0.20,
        "Decline when the evidence is below this (0..1): the share of the question's words "
        "(IDF-weighted, stemmed) the best sentence covers, blended with the best passage's "
        "dense similarity by rerank_weight.",
    )
    type_check: bool = _field(True, "Decline when the sentence lacks the asked-for answer type.")
    negation_check: bool = _field(
        True, "Decline a negated question ('what is not ...') whose sentence states no negation."
    )
    contrast_check: bool = _field(
        True,
        "Decline when the question uses a contrasting word ('mild') where the sentence "
        "uses another of its group ('severe').",
    )
    entity_check: bool = _field(
        True, "Decline when a name or number in the question is absent from the best passage."
    )
    neighbour_weight: float = _field(
        0.5, "How much a question word in the sentence before or after counts (0..1)."
    )
    context_weight: float = _field(
        0.3, "How much a word from earlier turns counts, relative to a question word (0..1)."
    )
    semantic_weight: float = _field(
        0.3,
        "Weight of the question-sentence embedding similarity against word coverage when "
        "scoring sentences (0: words only).",
    )
    rerank_weight: float = _field(
        0.5,
        "Weight of dense similarity beside the best sentence's question-word coverage, in "
        "reranking passages and in the evidence min_support checks (0..1; 0 = coverage only).",
    )
    max_sentences: int = _field(3, "At most this many supporting sentences are quoted.")
    support_threshold: float = _field(
        0.35, "A cited sentence whose support score is below this is flagged unsupported."
    )

    def __post_init__(self) -> None:
        for name in ("k", "fetch_k", "per_doc_cap", "rrf_k", "max_question_chars", "compound_k"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("reader_threshold", "reader_confident"):
            value = getattr(self, name)
            try:
                float(value) if value.strip() else None
            except ValueError:
                raise SettingsError(f"{name} must be a number or empty, got {value!r}") from None
        if self.reader_threads < 0:
            raise SettingsError(f"reader_threads must be 0 or more, got {self.reader_threads}")
        if self.torch_threads < 0:
            raise SettingsError(f"torch_threads must be 0 or more, got {self.torch_threads}")
        if self.fetch_k < self.k:
            raise SettingsError(f"fetch_k must be at least k={self.k}, got {self.fetch_k}")
        if self.max_sentences < 1:
            raise SettingsError(f"max_sentences must be at least 1, got {self.max_sentences}")
        for name in (
            "min_support",
            "min_lexical",
            "neighbour_weight",
            "context_weight",
            "rerank_weight",
            "semantic_weight",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SettingsError(f"{name} must be between 0 and 1, got {value}")
        for name in ("min_dense", "min_sentence"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise SettingsError(f"{name} must be between -1 and 1, got {getattr(self, name)}")
        if (
            self.dense_weight < 0
            or self.bm25_weight < 0
            or not (self.dense_weight or self.bm25_weight)
        ):
            raise SettingsError(
                "dense_weight and bm25_weight must be non-negative and not both 0, got "
                f"{self.dense_weight} and {self.bm25_weight}"
            )
