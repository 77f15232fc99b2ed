"""Plan a reingest by difference: which documents to add, update, delete or leave alone.

Why our own manifest and not LangChain's ``index()`` with a record manager: ``index()`` hashes
the *split* documents, so every run must read, parse and chunk every file (PDFs included) just
to learn that nothing changed. The manifest compares file size and mtime first and the bytes'
hash second, so an unchanged folder costs a ``stat`` per file and no parsing or embedding.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import IngestSettings
from ingest.context import (
    CONTEXT_VERSION,
    markdown_sections,
    retrieval_text,
    section_at,
    stored_context,
)
from ingest.discovery import Discovery, FoundFile
from ingest.errors import LoadError
from ingest.formats import LOADER_VERSIONS
from ingest.loaders import LoadedDocument, file_hash, load_document, read_file
from ingest.manifest import DocRecord, doc_key, now
from ingest.splitter import SPLITTER_VERSION, Chunk, TokenSplitter

if TYPE_CHECKING:
    from ingest.store import DocIndex


@dataclass
class Work:
    """A document to (re)write: what it was, what it is now, and its new chunks."""

    found: FoundFile
    doc: LoadedDocument
    size: int
    mtime_ns: int
    old: DocRecord | None
    chunks: list[Chunk] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    fingerprint: str = ""  # the document's, recorded in the manifest

    @property
    def key(self) -> str:
        return doc_key(str(self.found.root), self.found.source)

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """The metadata every chunk of the document carries."""
        doc = self.doc
        meta: dict[str, Any] = {
            "source": doc.source,
            "doc_id": str(Path(doc.source).with_suffix("")),
            "root": str(self.found.root),
            "title": doc.title,
            "content_hash": doc.content_hash,
        }
        if doc.title_is_excerpt:
            meta["title_is_excerpt"] = True
        if doc.date:
            meta["date"] = doc.date
        if doc.publisher:
            meta["publisher"] = doc.publisher
        if doc.author:
            meta["author"] = doc.author
        return meta

    @cached_property
    def sections(self) -> list[tuple[int, str]]:
        return markdown_sections(self.doc.text)

    def section(self, chunk: Chunk) -> str:
        """The headings ``chunk`` sits under ("Time off › Parental leave"), or ""."""
        return section_at(self.sections, chunk.start)

    def context(self, chunk: Chunk) -> str:
        """``chunk``'s context line, embedded and BM25-indexed with it: the document's, with
        the chunk's section after the title (rendered from the stored metadata, as readers
        rebuilding BM25 do)."""
        section = self.section(chunk)
        return stored_context({**self.metadata, "section": section} if section else self.metadata)

    def retrieval_text(self, chunk: Chunk) -> str:
        """What ``chunk`` is embedded as: the context line, then its text (stored as is)."""
        return retrieval_text(self.context(chunk), chunk.text)

    def chunk_ids(self, fp: str) -> list[str]:
        """The ids of the chunks (``chunk_ids``), each from its own retrieval text."""
        return chunk_ids(self.key, fp, [self.retrieval_text(c) for c in self.chunks])

    def record(self, fingerprint: str) -> DocRecord:
        """The manifest's record of the document once its chunks are written."""
        return DocRecord(
            doc_key=self.key,
            root=str(self.found.root),
            source=self.found.source,
            content_hash=self.doc.content_hash,
            fingerprint=fingerprint,
            size=self.size,
            mtime_ns=self.mtime_ns,
            title=self.doc.title,
            date=self.doc.date,
            chunk_ids=tuple(self.ids),
            ingested_at=now(),
        )


@dataclass
class Deferred:
    """A changed document whose loading and splitting run elsewhere (on a Ray cluster): its
    bytes, read here, are shipped with it."""

    found: FoundFile
    data: bytes
    size: int
    mtime_ns: int
    old: DocRecord | None
    fingerprint: str = ""  # the document's (``document_fingerprint``)


@dataclass
class Plan:
    add: list[Work] = field(default_factory=list)
    update: list[Work] = field(default_factory=list)
    delete: list[DocRecord] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[LoadError] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    # Changed documents not loaded yet (``make_plan(defer=True)``); each becomes an add or an
    # update (or a failure) once it is loaded and split.
    deferred: list[Deferred] = field(default_factory=list)

    @property
    def work(self) -> list[Work]:
        return self.add + self.update

    def describe(self) -> str:
        new = sum(len(w.chunks) for w in self.work)
        old = sum(w.old.n_chunks for w in self.update if w.old) + sum(
            r.n_chunks for r in self.delete
        )
        ocr = sum(w.doc.ocr_pages for w in self.work)
        old += sum(d.old.n_chunks for d in self.deferred if d.old)
        add = len(self.add) + sum(d.old is None for d in self.deferred)
        update = len(self.update) + sum(d.old is not None for d in self.deferred)
        write = f"write {new}" if not self.deferred else "write: split on the cluster"
        return (
            f"plan: add {add}, update {update}, delete {len(self.delete)}, "
            f"unchanged {len(self.unchanged)}, failed {len(self.failed)} "
            f"(chunks: {write}, remove {old})" + (f"; OCR read {ocr} pages" if ocr else "")
        )


def fingerprint(settings: IngestSettings, model: str) -> str:
    """What, besides the bytes, decides a document's chunks and vectors."""
    return (
        f"{model}|{settings.chunk_size}|{settings.chunk_overlap}|split{SPLITTER_VERSION}"
        f"|context{CONTEXT_VERSION}"
    )


def document_fingerprint(base: str, path: Path, ocr: str) -> str:
    """``base`` (``fingerprint``), plus for types with a loader version (PDFs, images) that
    version and the OCR setting: bumping it, or changing the setting, reingests just those."""
    version = LOADER_VERSIONS.get(path.suffix.lower())
    return f"{base}|{version}|ocr-{ocr}" if version else base


def chunk_ids(key: str, fp: str, texts: Sequence[str]) -> list[str]:
    """Deterministic ids: document identity + the chunk's retrieval text (its context line,
    embedded and BM25-indexed with it, and its own text) and the chunking fingerprint + which
    repeat of that text in the document it is. Editing a document's body changes only the ids
    of the chunks whose text (or section heading) changed, so only those are embedded again;
    the others get their new offsets as metadata. A new title, publisher or date changes them
    all."""
    doc = hashlib.sha256(key.encode()).hexdigest()[:16]
    seen: Counter[str] = Counter()
    ids = []
    for text in texts:
        digest = hashlib.sha256(f"{fp}|{text}".encode()).hexdigest()[:16]
        ids.append(f"{doc}-{digest}-{seen[digest]:03d}")
        seen[digest] += 1
    return ids


def make_plan(
    discovery: Discovery, index: DocIndex, splitter: TokenSplitter, *, defer: bool = False
) -> Plan:
    """Compare the files found with the manifest; load and split only what changed
    (``defer``: only read the changed files' bytes, into ``plan.deferred``)."""
    settings = index.settings
    base = fingerprint(settings, index.model)
    plan = Plan(failed=list(discovery.errors), notices=list(discovery.notices))
    known = index.manifest.documents()
    present: set[str] = set()
    for found in discovery.files:
        key = doc_key(str(found.root), found.source)
        present.add(key)
        old = known.get(key)
        fp = document_fingerprint(base, found.path, settings.ocr)
        try:
            st = found.path.stat()
            if (
                old
                and old.fingerprint == fp
                and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns)
            ):
                plan.unchanged.append(found.source)
                continue
            if defer:
                data = read_file(found.path, settings.max_file_bytes)
                content_hash = file_hash(data)  # what load_document records
            else:
                doc = load_document(
                    found.path,
                    found.source,
                    max_bytes=settings.max_file_bytes,
                    max_text_bytes=settings.max_text_bytes,
                    ocr=settings.ocr,
                    progress=settings.progress,
                )
                content_hash = doc.content_hash
        except LoadError as exc:
            plan.failed.append(exc)
            continue
        except OSError as exc:
            plan.failed.append(LoadError(found.path, f"cannot read: {exc.strerror or exc}"))
            continue
        if old and old.fingerprint == fp and old.content_hash == content_hash:
            index.manifest.touch(key, st.st_size, st.st_mtime_ns)  # touched, same bytes
            plan.unchanged.append(found.source)
            continue
        if defer:
            plan.deferred.append(Deferred(found, data, st.st_size, st.st_mtime_ns, old, fp))
            continue
        work = Work(found, doc, st.st_size, st.st_mtime_ns, old, fingerprint=fp)
        work.chunks = splitter.split(doc.text)
        work.ids = work.chunk_ids(fp)
        (plan.update if old else plan.add).append(work)
    walked = {str(root) for root in discovery.roots}
    # A folder that could not be listed hides its files: never delete what it may still hold.
    unlisted = [Path(e.path) for e in discovery.errors if e.reason.startswith("cannot list")]
    for key, record in known.items():
        if record.root not in walked or key in present:
            continue
        path = Path(record.root) / record.source
        if any(path.is_relative_to(folder) for folder in unlisted):
            continue
        plan.delete.append(record)
    return plan
