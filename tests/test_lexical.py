"""The segmented BM25 index: bm25s' scores, updates equal to a rebuild, and the files on disk."""

from __future__ import annotations

import fcntl
import random
import threading
from pathlib import Path

import pytest

from ingest import ingest_paths, open_index
from ingest.lexical import MAX_SEGMENTS, LexicalIndex
from ingest.segment import Segment, tokenize
from ingest.store import DocIndex
from tests.conftest import write

WORDS = (
    "policy tariff trade china tax budget vote senate house court judge ruling appeal market "
    "stock bond rate inflation energy oil gas climate water council school health rail"
).split()
QUERIES = [
    "policy tariff trade",
    "court court ruling",  # a repeated query word counts twice, as in bm25s
    "oil",
    "the of and",  # nothing but stopwords
    "zeppelin",  # in no chunk
    "inflation rate bond market water",
]


def texts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def scores(index: LexicalIndex, query: str) -> dict[str, float]:
    return dict(index.search(query, 10_000))


def assert_same(a: LexicalIndex, b: LexicalIndex) -> None:
    assert len(a) == len(b)
    assert a.live_ids() == b.live_ids()
    for q in QUERIES:
        sa, sb = scores(a, q), scores(b, q)
        assert sa.keys() == sb.keys(), q
        assert all(sa[k] == pytest.approx(sb[k], rel=1e-9) for k in sa), q


def test_scores_equal_bm25s():
    import bm25s

    docs = texts(400)
    ids = [f"c{i}" for i in range(len(docs))]
    ours = LexicalIndex.build(zip(ids, docs, strict=True), 1)
    theirs = bm25s.BM25()
    theirs.index(tokenize(docs), show_progress=False)
    compared = 0
    for q in QUERIES:
        tokens = tokenize([q])
        expected: dict[str, float] = {}
        if tokens[0] and any(t in theirs.vocab_dict for t in tokens[0]):
            found, values = theirs.retrieve(tokens, k=len(docs), show_progress=False)
            pairs = zip(found[0], values[0], strict=True)
            expected = {ids[int(d)]: float(s) for d, s in pairs if s > 0}
        got = scores(ours, q)
        assert got.keys() == expected.keys(), q
        assert all(got[k] == pytest.approx(expected[k], rel=1e-5) for k in got), q
        compared += len(got)
    assert compared > 500


def test_top_k_is_the_best_k_in_order():
    docs = texts(300, seed=2)
    index = LexicalIndex.build(((f"c{i}", t) for i, t in enumerate(docs)), 1)
    everything = index.search("court ruling appeal", 10_000)
    top = index.search("court ruling appeal", 7)
    assert top == everything[:7]
    assert [s for _, s in everything] == sorted((s for _, s in everything), reverse=True)
    assert index.search("court", 0) == []


def test_an_update_equals_a_rebuild_of_the_result():
    docs = texts(300, seed=3)
    base = LexicalIndex.build(((f"c{i}", t) for i, t in enumerate(docs)), 1)
    fresh = texts(40, seed=4)
    added = [(f"n{i}", t) for i, t in enumerate(fresh)]
    removed = [f"c{i}" for i in range(0, 300, 7)]
    updated = base.updated(added, removed, 2)
    assert updated.generation == 2
    survivors = [(f"c{i}", t) for i, t in enumerate(docs) if f"c{i}" not in set(removed)]
    assert_same(updated, LexicalIndex.build(survivors + added, 2))
    # The base is untouched (a search in flight keeps its view).
    assert_same(base, LexicalIndex.build(((f"c{i}", t) for i, t in enumerate(docs)), 1))
    # Adding what is there changes nothing; removing what is not there neither.
    again = updated.updated(added[:5], ["never-stored"], 3)
    assert len(again.segments) == len(updated.segments)
    assert_same(again, updated)


def test_many_small_updates_stay_few_segments_and_exact():
    docs = texts(200, seed=5)
    live = {f"c{i}": t for i, t in enumerate(docs)}
    index = LexicalIndex.build(live.items(), 0)
    rng = random.Random(6)
    for step in range(1, 40):
        gone = rng.sample(sorted(live), 6)
        new = {f"s{step}-{j}": t for j, t in enumerate(texts(5, seed=100 + step))}
        index = index.updated(new.items(), gone, step)
        for g in gone:
            del live[g]
        live.update(new)
        assert len(index.segments) <= MAX_SEGMENTS
    assert all(d.sum() <= 0.3 * len(s) for s, d in zip(index.segments, index.dead, strict=True))
    assert_same(index, LexicalIndex.build(live.items(), 39))


def test_removing_everything_leaves_an_empty_index():
    index = LexicalIndex.build([("a", "oil gas"), ("b", "oil court")], 1)
    empty = index.updated((), ["a", "b"], 2)
    assert len(empty) == 0 and empty.segments == []
    assert empty.search("oil", 5) == []
    assert LexicalIndex.build((), 0).search("oil", 5) == []


def test_save_writes_only_new_segments_and_load_reuses_known_ones(tmp_path):
    folder = tmp_path / "bm25"
    base = LexicalIndex.build(((f"c{i}", t) for i, t in enumerate(texts(100))), 1)
    base.save(folder)
    first = {p.name: p.stat().st_mtime_ns for p in folder.glob("seg-*.npz")}
    assert len(first) == 1

    updated = base.updated([("n1", "zeppelin hangar")], ["c3"], 2)
    updated.save(folder)
    second = {p.name: p.stat().st_mtime_ns for p in folder.glob("seg-*.npz")}
    assert len(second) == 2 and {k: second[k] for k in first} == first  # old one untouched

    reloaded = LexicalIndex.load(folder, previous=base)
    assert reloaded is not None and reloaded.generation == 2
    assert reloaded.segments[0] is base.segments[0]  # not read again
    assert_same(reloaded, updated)
    assert_same(LexicalIndex.load(folder), updated)  # and from nothing


def test_merged_away_segments_are_deleted_and_old_format_files_too(tmp_path):
    folder = tmp_path / "bm25"
    folder.mkdir()
    (folder / "ids.json").write_text("{}", encoding="utf-8")  # the single-bm25s layout
    (folder / "params.index.json").write_text("{}", encoding="utf-8")
    assert LexicalIndex.load(folder) is None
    index = LexicalIndex.build([("a", "oil gas")], 1)
    for step in range(2, 3 + MAX_SEGMENTS):
        index = index.updated([(f"n{step}", "court ruling")], (), step)
        index.save(folder)
    on_disk = {p.name for p in folder.iterdir()}
    assert on_disk == {s.filename for s in index.segments} | {"segments.json", ".lock"}


def test_a_reader_rereads_the_list_when_a_segment_went_meanwhile(tmp_path, monkeypatch):
    folder = tmp_path / "bm25"
    LexicalIndex.build([("a", "oil gas"), ("b", "court")], 4).save(folder)
    real = Segment.load
    calls = []

    def flaky(cls_folder: Path, name: str) -> Segment:
        calls.append(name)
        if len(calls) == 1:
            raise FileNotFoundError(name)
        return real(cls_folder, name)

    monkeypatch.setattr(Segment, "load", staticmethod(flaky))
    loaded = LexicalIndex.load(folder)
    assert loaded is not None and len(calls) == 2 and loaded.search("oil", 1)[0][0] == "a"


def test_unreadable_state_is_none(tmp_path):
    folder = tmp_path / "bm25"
    LexicalIndex.build([("a", "oil gas")], 1).save(folder)
    (folder / "segments.json").write_text("{not json", encoding="utf-8")
    assert LexicalIndex.load(folder) is None
    assert LexicalIndex.load(tmp_path / "missing") is None


# ---- through the index: an edit costs its own chunks, not the corpus


def _many_files(root: Path, n: int) -> Path:
    for i, text in enumerate(texts(n, seed=9)):
        write(root / f"doc{i:03}.txt", f"Report {i}. {text}.")
    return root


def test_editing_one_file_updates_bm25_without_reading_the_corpus(
    tmp_path, fake_settings, monkeypatch
):
    docs = _many_files(tmp_path / "docs", 40)
    ingest_paths([docs], fake_settings)

    def whole(*_a, **_k):
        raise AssertionError("the whole collection was read")

    monkeypatch.setattr(DocIndex, "iter_chunks", whole)
    monkeypatch.setattr(DocIndex, "all_ids", whole)
    write(docs / "doc007.txt", "The zeppelin hangar reopened on Tuesday.")
    (docs / "doc011.txt").unlink()
    write(docs / "extra.txt", "A quiet harbour and its lighthouse keeper.")
    report = ingest_paths([docs], fake_settings)
    assert (len(report.plan.update), len(report.plan.add), len(report.plan.delete)) == (1, 1, 1)

    index = open_index(fake_settings)
    try:
        monkeypatch.undo()
        by_source = {c.id: c.metadata["source"] for c in index.iter_chunks()}
        monkeypatch.setattr(DocIndex, "iter_chunks", whole)
        monkeypatch.setattr(DocIndex, "all_ids", whole)
        lexical = index.lexical()  # loaded from disk, not rebuilt
        assert lexical.live_ids() == set(by_source)
        assert by_source[index.lexical_search("zeppelin hangar", 1)[0][0]] == "doc007.txt"
        assert by_source[index.lexical_search("lighthouse keeper", 1)[0][0]] == "extra.txt"
        assert all(by_source[i] != "doc011.txt" for i, _ in index.lexical_search("report", 99))
    finally:
        index.close()


def test_a_stale_bm25_index_is_synced_by_difference(tmp_path, fake_settings, monkeypatch):
    """A reader whose BM25 state is older than the collection (say the writer died before
    saving it) fetches only the chunks it lacks."""
    docs = _many_files(tmp_path / "docs", 30)
    ingest_paths([docs], fake_settings)
    folder = open_index(fake_settings).lexical_dir
    old_state = (folder / "segments.json").read_text(encoding="utf-8")
    old_files = {p.name: p.read_bytes() for p in folder.glob("seg-*.npz")}
    write(docs / "doc003.txt", "The zeppelin hangar reopened on Tuesday.")
    ingest_paths([docs], fake_settings)
    for name, data in old_files.items():  # put the older state back
        (folder / name).write_bytes(data)
    (folder / "segments.json").write_text(old_state, encoding="utf-8")

    fetched: list[int] = []
    real_get = DocIndex.get

    def counting_get(self, ids):
        fetched.append(len(ids))
        return real_get(self, ids)

    monkeypatch.setattr(DocIndex, "get", counting_get)
    monkeypatch.setattr(DocIndex, "iter_chunks", lambda *a, **k: pytest.fail("rebuilt whole"))
    index = open_index(fake_settings)
    try:
        hits = index.lexical_search("zeppelin hangar", 1)
        assert hits and index.get([hits[0][0]])[0].metadata["source"] == "doc003.txt"
        assert sum(fetched[:-1]) == 1  # the one new chunk (the last get is this test's)
        assert len(index.lexical()) == index.count()
    finally:
        index.close()


def test_a_reader_keeps_its_bm25_while_an_ingest_runs_then_follows(
    tmp_path, fake_settings, monkeypatch
):
    """Mid-run the manifest moves wave by wave but BM25 is saved at the end: a reader does not
    chase the waves (each would list every id), it keeps its state until the run is over."""
    from ingest.lock import write_lock

    docs = _many_files(tmp_path / "docs", 10)
    ingest_paths([docs], fake_settings)
    reader = open_index(fake_settings)
    try:
        before = reader.lexical()
        # A run that committed but has not saved BM25 yet (as if still going).
        monkeypatch.setattr(DocIndex, "update_lexical", lambda *a, **k: None)
        write(docs / "extra.txt", "The zeppelin hangar reopened on Tuesday.")
        ingest_paths([docs], fake_settings)
        monkeypatch.undo()
        listed: list[int] = []
        real_all_ids = DocIndex.all_ids

        def counting_all_ids(self, *a, **k):
            listed.append(1)
            return real_all_ids(self, *a, **k)

        monkeypatch.setattr(DocIndex, "all_ids", counting_all_ids)
        with write_lock(fake_settings.index_dir):
            kept = reader.lexical()
            assert kept.generation == before.generation and kept.live_ids() == before.live_ids()
            assert reader.lexical_search("zeppelin", 3) == []
            assert listed == []
        hits = reader.lexical_search("zeppelin hangar", 3)  # the run is over: caught up
        assert listed == [1] and hits
        assert reader.get([hits[0][0]])[0].metadata["source"] == "extra.txt"
    finally:
        reader.close()


class RacingFlock:
    """``fcntl`` as ``ingest.lock`` sees it, making the race the probe test is about happen:
    once armed, the next reader probe that gets its shared lock keeps it until a writer has
    tried to take the lock and found it held (a reader probing at the very moment an ingest
    starts). Counts those collisions."""

    LOCK_EX, LOCK_SH, LOCK_NB, LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_SH, fcntl.LOCK_NB, fcntl.LOCK_UN

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.holding = threading.Event()
        self.collided = threading.Event()
        self.collisions = 0

    def flock(self, fh, operation: int) -> None:
        try:
            fcntl.flock(fh, operation)
        except BlockingIOError:
            if operation & fcntl.LOCK_EX:  # a writer found a reader's lock
                self.collisions += 1
                self.collided.set()
            raise
        if operation & fcntl.LOCK_SH and self.armed.is_set():
            self.armed.clear()
            self.holding.set()
            self.collided.wait(10)  # hold it across a writer's attempt
            self.collided.clear()
            self.holding.clear()


def test_a_reader_probing_the_lock_never_makes_an_ingest_fail(tmp_path, fake_settings, monkeypatch):
    """A reader's probe (``ingest_running``: a shared lock held for microseconds) can hold
    the lock just when an ingest takes it: the writer retries instead of failing. Each of
    the 30 ingests below starts while a probe holds the lock, and the probe keeps running
    meanwhile, so the natural races happen too."""
    import ingest.lock

    docs = _many_files(tmp_path / "docs", 5)
    ingest_paths([docs], fake_settings)
    race = RacingFlock()
    monkeypatch.setattr(ingest.lock, "fcntl", race)
    reader = open_index(fake_settings)
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            reader.ingest_running()

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        for i in range(30):
            write(docs / f"new{i}.txt", f"Note {i} about the harbour.")
            race.armed.set()
            assert race.holding.wait(10), "the probe never took the lock"
            assert ingest_paths([docs], fake_settings).exit_code == 0
            assert race.collisions >= i + 1  # this ingest met the probe's lock, and retried
    finally:
        stop.set()
        race.collided.set()
        thread.join()
        reader.close()


def test_irregular_forms_match_their_base_word_in_bm25_and_in_stem():
    from ingest.text import stem

    docs = {
        "pay": "Staff who work overtime are entitled to extra pay.",
        "vacation": "Every employee has twenty days of vacation.",
        "kids": "The child care allowance covers each child under twelve.",
    }
    index = LexicalIndex.build(docs.items(), 1)
    assert [cid for cid, _ in index.search("Is overtime paid?", 3)][0] == "pay"
    assert [cid for cid, _ in index.search("children", 3)] == ["kids"]
    assert stem("paid") == stem("pay") == stem("paying")
    assert stem("sold") == stem("selling") and stem("taught") == stem("teaches")
    # words that are just as often another word keep their own stem
    assert stem("left") != stem("leave") and stem("found") != stem("find")


def test_an_index_of_the_previous_analyser_is_rebuilt_not_read(tmp_path):
    import json

    from ingest.lexical import FORMAT

    folder = tmp_path / "bm25"
    LexicalIndex.build([("a", "overtime pay")], 1).save(folder)
    assert LexicalIndex.load(folder) is not None
    state = json.loads((folder / "segments.json").read_text(encoding="utf-8"))
    state["format"] = FORMAT - 1  # its terms were stemmed without the irregular forms
    (folder / "segments.json").write_text(json.dumps(state), encoding="utf-8")
    assert LexicalIndex.load(folder) is None
