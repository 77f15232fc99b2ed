"""Reading a question's shape (summary request, compound parts, named sources), mending
misspelt words against an index's vocabulary, word evidence over the whole index, and the
extractive summary — without the embedding model."""

from __future__ import annotations

import numpy as np
import pytest

from chatbot.question import named_sources, shape, split_parts, summary_focus
from chatbot.relevance import CorpusStats, edit_distance, lexical_relevance, query_terms
from chatbot.summary import document_sentences, summarize
from chatbot.types import Passage
from ingest.lexical import LexicalIndex


@pytest.mark.parametrize(
    ("question", "focus"),
    [
        ("Summarize the article", ""),
        ("summarise this", ""),
        ("What is this about?", ""),
        ("what's it about", ""),
        ("what is this article about", ""),
        ("whats this text about", ""),
        ("what are these documents about", ""),
        ("tl;dr", ""),
        ("What are the key points?", ""),
        ("Give me a summary of the memo", "memo"),
        ("What is the memo about?", "memo"),
        ("can you summarize the Betashares deal", "Betashares deal"),
    ],
)
def test_summary_requests_and_what_they_name(question, focus):
    assert summary_focus(question) == focus
    assert shape(question).summary


@pytest.mark.parametrize(
    "question",
    [
        "Who sent the memo?",
        "What did Trump announce?",
        "What does the memo say?",
        "What happened to the plan?",
        "Why is the death penalty used less?",
    ],
)
def test_plain_questions_are_not_summary_requests(question):
    assert summary_focus(question) is None
    s = shape(question)
    assert not s.summary and not s.multi_part and s.parts == (question,)


def test_a_comparison_of_two_named_articles_splits_into_one_part_each():
    q = (
        "Does 'The New York Times' article attribute the success of the Buffalo Bills' "
        "defense to Jordan Poyer, while the 'Sporting News' article suggests that the "
        "Baltimore Ravens' defense needs to improve?"
    )
    s = shape(q)
    assert s.multi_part and s.yes_no and s.comparison
    assert s.sources == ("New York Times", "Sporting News")
    assert len(s.parts) == 2
    assert "Jordan Poyer" in s.parts[0] and "New York Times" in s.parts[0]
    assert "Ravens" in s.parts[1] and "Sporting News" in s.parts[1]


def test_sources_listed_after_reported_by_each_get_a_search():
    q = (
        "Which company, as reported by both TechCrunch and The Verge, has spent billions "
        "to stay the default search engine and is also accused of harming publishers?"
    )
    assert named_sources(q) == ("TechCrunch", "Verge")
    s = shape(q)
    assert not s.yes_no
    assert [p.split(":")[0] for p in s.parts[:2]] == ["TechCrunch", "Verge"]
    assert any(p.startswith("is also accused") for p in s.parts)


def test_parts_need_words_of_their_own():
    assert split_parts("Is it good, while bad?") == ("Is it good, while bad?",)
    assert len(split_parts("Did prices rise in Sydney, while wages fell in Melbourne?")) == 2


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("sesion", "session", 1), ("epidemc", "epidem", 1), ("oppioid", "opioid", 1),
     ("teh", "the", 1), ("abc", "abc", 0), ("kitten", "sitting", 3)],
)  # fmt: skip
def test_edit_distance_counts_swaps_as_one(a, b, distance):
    assert edit_distance(a, b, 5) == distance
    assert edit_distance(a, b, distance - 1) == distance if distance else True


def _stats(texts: list[str]) -> CorpusStats:
    return CorpusStats(LexicalIndex.build([(f"c{i}", t) for i, t in enumerate(texts)], 1))


def test_misspelt_words_are_mended_to_the_most_frequent_close_index_word():
    stats = _stats(
        [
            "Attorney General Jeff Sessions sent a memo on the opioid epidemic.",
            "Sessions said the session of Congress was long and hand-written.",
            "An express train and a coat.",
            "The opioid epidemic keeps growing.",
        ]
    )
    asked = ["sesion", "epidemc", "oppioid", "jef", "memo", "hard", "banana", "cat", "espresso"]
    fixes = stats.corrections(asked)
    # a word of the index is never "mended"; nor is a short word one edit from another
    # ("hard"/"hand", "cat"/"coat": only a doubled letter), nor a long one two edits away
    # from another word ("espresso"/"express")
    assert fixes == {"sesion": "session", "epidemc": "epidem", "oppioid": "opioid", "jef": "jeff"}


def test_word_evidence_weighs_rare_words_and_counts_the_document_context():
    stats = _stats(
        ["Trump announced a plan.", "The plan was announced.", "TechCrunch covered it."] * 3
    )
    plain = Passage("a", "President Trump announced a plan.", "a.txt", "A", 0, 30)
    other = Passage("b", "The plan was announced on Monday.", "b.txt", "B", 0, 30)
    share, where = lexical_relevance(
        query_terms("What did Trump announce?", {}), [other, plain], stats
    )
    assert where == 1 and share == pytest.approx(1.0)
    share_other, _ = lexical_relevance(query_terms("What did Trump announce?", {}), [other], stats)
    assert 0 < share_other < 0.5  # "announce" is common, "Trump" is not
    tagged = Passage("c", "Funding rose.", "c.txt", "Startups", 0, 13, publisher="TechCrunch")
    share, _ = lexical_relevance(query_terms("techcrunch funding", {}), [tagged], stats)
    assert share == pytest.approx(1.0)  # "techcrunch" is only in the document's context


def test_meta_words_are_not_evidence():
    assert query_terms("What epidemic is mentioned in the article?", {}) == ["epidem"]


def test_names_the_index_never_mentions_are_unknown():
    stats = _stats(["Britain and Victoria signed the deal.", "Google paid Apple."])
    assert stats.mentions("Google") and stats.mentions("Apple")
    assert stats.mentions("British") and stats.mentions("Victorian")  # word families
    assert not stats.mentions("Wimbledon") and not stats.mentions("Coldplay")
    assert CorpusStats(None).mentions("Anything")  # no statistics: nothing is declined


def _chunk(text: str, start: int) -> Passage:
    return Passage(f"id{start}", text, "doc.txt", "Doc", start, start + len(text))


def test_document_sentences_are_taken_once_from_overlapping_chunks():
    body = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen."
    first = _chunk(body[:52], 0)  # ends inside the third sentence
    second = _chunk(body[25:], 25)
    found = [p.text[a:b] for p, a, b in document_sentences([first, second])]
    assert found == [
        "One two three four five.",
        "Six seven eight nine ten.",
        "Eleven twelve thirteen fourteen.",
    ]


def test_a_summary_keeps_the_most_central_sentences_in_document_order():
    sentences = [
        "The council approved the new budget for schools on Monday evening.",
        "Budget talks for the schools had lasted for several long months.",
        "A local bakery won a prize for its rye bread at the fair.",
        "The schools budget adds money for teachers and for books.",
    ]
    text = " ".join(sentences)
    vocabulary = sorted({w.strip(".").lower() for t in sentences for w in t.split()})

    def vectors(texts: list[str]) -> np.ndarray:  # bag of words, unit length
        rows = []
        for t in texts:
            v = np.zeros(len(vocabulary))
            for w in t.split():
                if w.strip(".").lower() in vocabulary:
                    v[vocabulary.index(w.strip(".").lower())] += 1
            rows.append(v / (np.linalg.norm(v) or 1))
        return np.stack(rows)

    picked = summarize([_chunk(text, 0)], vectors, 3)
    assert [s.text for s in picked] == [sentences[0], sentences[1], sentences[3]]
    assert all(text[s.start : s.end] == s.text for s in picked)
    focused = summarize([_chunk(text, 0)], vectors, 1, focus="bakery")
    assert [s.text for s in focused] == [sentences[2]]


def test_a_named_source_matches_its_publisher_by_whole_words():
    from chatbot.relevance import same_source

    assert same_source("Verge", "The Verge")
    assert same_source("Cnbc", "CNBC | World Business News Leader")
    assert same_source("New York Times", "The New York Times")
    assert not same_source("Age", "The Sage Herald")
    assert not same_source("Bloomberg", "TechCrunch")
    stats = CorpusStats(None, publishers=frozenset({"TechCrunch", "The Verge"}))
    assert stats.publishes("the Verge") and not stats.publishes("Reuters")
    assert CorpusStats(None).publishes("Reuters")  # no publishers known: nothing declined


def test_number_answers_are_of_the_kind_asked_for():
    from chatbot.answer_types import NUMBER, candidates

    sentence = "Four of the Tesla models sold 300,000 cars; the Model 3 costs $40,000 in total."
    assert [c.text for c in candidates(NUMBER, sentence, "How much does a Model 3 cost?")] == [
        "$40,000"
    ]
    props = "Bettors ask how many three-point shots a player hits, and five players start."
    assert [c.text for c in candidates(NUMBER, props, "How many players start?")] == ["five"]


@pytest.mark.parametrize(
    ("question", "yes_no"),
    [
        ("am i allowed to have a side job", True),
        ("May I expense a new laptop?", True),
        ("don't we get lunch on fridays", True),
        ("must I book leave two weeks ahead?", True),
        ("is there a gym reimbursement", True),
        ("What is the dress code?", False),
        ("Isabel who?", False),
        ("Canada leave", False),
    ],
)
def test_yes_no_questions_as_people_type_them(question, yes_no):
    assert shape(question).yes_no is yes_no
