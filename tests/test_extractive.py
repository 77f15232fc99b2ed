"""The extractive answerer and its refusal rules, on hand-built passages (no model, no index)."""

from __future__ import annotations

import pytest

from chatbot.config import ChatSettings
from chatbot.extractive import extract, rerank, split_sentences, support_score
from chatbot.types import Passage
from ingest import SettingsError

SETTINGS = ChatSettings()

SEED_PARAGRAPHS = [
    "U.S. Attorney General Jeff Sessions instructed federal prosecutors on Wednesday to seek "
    "the death penalty in drug-related cases whenever it is “appropriate,” saying the Justice "
    "Department must boost efforts to counter an epidemic of opioid abuse.\n\nHis mandate to "
    "prosecutors followed a plan announced by President Donald Trump earlier this week that "
    "called for executing opioid dealers and traffickers.",
    "“In the face of all of this death, we cannot continue with business as usual,” Sessions "
    "said in a memo on countering the opioid epidemic sent to the country’s U.S. Attorneys "
    "offices.",
    "Under U.S. law, there are only four limited circumstances in which the death penalty can "
    "be sought in federal drug cases.\n\nThose include cases which involve racketeering, cases "
    "involving the use of a firearm resulting in death during a drug trafficking crime.",
    "Many American states also impose the death penalty, although also only for the most "
    "heinous crimes. Use of the death penalty has been declining in recent years because of "
    "a lack of access to drugs used in executing people.",
]


def passage(text: str, n: int = 1, dense: float | None = 0.6, source: str = "doc.txt") -> Passage:
    return Passage(
        chunk_id=f"c{n}",
        text=text,
        source=source,
        title="",
        start=0,
        end=len(text),
        doc_id=source,
        n=n,
        dense_score=dense,
        fused_score=1.0 / n,
    )


def seed_passages() -> list[Passage]:
    return [passage(t, n=i, source="seed.txt") for i, t in enumerate(SEED_PARAGRAPHS, start=1)]


def sentences_of(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


# ---- sentence splitting


def test_split_keeps_abbreviations_and_initialisms_inside_sentences() -> None:
    text = (
        "U.S. Attorney General Jeff Sessions met Dr. Smith at 5 p.m. on Friday. "
        "Rep. Joe Barton wrote to the IPCC. In 1939, c. 1,300,000 people lived there."
    )
    assert sentences_of(text) == [
        "U.S. Attorney General Jeff Sessions met Dr. Smith at 5 p.m. on Friday.",
        "Rep. Joe Barton wrote to the IPCC.",
        "In 1939, c. 1,300,000 people lived there.",
    ]


def test_split_ends_a_sentence_after_an_initialism_before_a_sentence_opener() -> None:
    assert sentences_of("It was made in the U.S. The next day he left.") == [
        "It was made in the U.S.",
        "The next day he left.",
    ]


def test_split_handles_quotes_and_blank_lines() -> None:
    text = (
        "“Drug traffickers contribute to this scourge. To combat it, we must act,” he added. "
        'He said "it is over." Then he left!\n\nA heading without a period\n\nLast one'
    )
    assert sentences_of(text) == [
        "“Drug traffickers contribute to this scourge.",
        "To combat it, we must act,” he added.",
        'He said "it is over."',
        "Then he left!",
        "A heading without a period",
        "Last one",
    ]


def test_split_offsets_point_into_the_text() -> None:
    text = "  First one.  Second one?\n\n Third.  "
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["First one.", "Second one?", "Third."]
    assert split_sentences("") == [] and split_sentences("   ") == []


# ---- choosing the sentence and the short answer


def test_coverage_picks_the_sentence_with_the_question_words() -> None:
    ps = [
        passage(
            "The Rhine is the longest river in Germany. The Rhine flows into the North Sea "
            "near Rotterdam. The river is navigable from Basel."
        )
    ]
    sel = extract("Where does the Rhine flow?", ps, SETTINGS)
    assert not sel.declined
    assert sel.sentences[0].text == "The Rhine flows into the North Sea near Rotterdam."
    assert sel.short_answer == "North Sea"
    s = sel.sentences[0]
    assert ps[0].text[s.start : s.end] == s.text and s.n == 1


@pytest.mark.parametrize(
    ("question", "short", "quoted"),
    [
        (
            "Who instructed prosecutors to seek the death penalty?",
            "U.S. Attorney General Jeff Sessions",
            "instructed federal prosecutors on Wednesday",
        ),
        ("Who announced a plan to execute opioid dealers?", "President Donald Trump", "plan"),
        ("When did Sessions issue the memo?", "Wednesday", "on Wednesday"),
        (
            "How many circumstances allow the death penalty for drug crimes under U.S. law?",
            "four",
            "only four limited circumstances",
        ),
    ],
)
def test_short_answers_on_the_seed_article(question: str, short: str, quoted: str) -> None:
    sel = extract(question, seed_passages(), SETTINGS)
    assert not sel.declined, sel.reason
    assert sel.short_answer == short
    assert quoted in sel.sentences[0].text
    assert 1 <= len(sel.sentences) <= SETTINGS.max_sentences


def test_why_question_quotes_the_sentence_without_short_answer() -> None:
    sel = extract("Why has use of the death penalty been declining?", seed_passages(), SETTINGS)
    assert not sel.declined
    assert sel.short_answer is None
    assert "lack of access to drugs" in sel.sentences[0].text


def test_follow_up_context_counts_less_than_the_question() -> None:
    ps = [passage("Paris is the capital of France. Berlin is the capital of Germany.")]
    sel = extract("What is its capital?", ps, SETTINGS, context="Germany")
    assert sel.sentences[0].text == "Berlin is the capital of Germany."
    sel = extract("What is the capital of France?", ps, SETTINGS, context="Germany")
    assert sel.sentences[0].text == "Paris is the capital of France."


# ---- refusals


def test_off_topic_declined_by_the_dense_floor() -> None:
    ps = [passage(t, n=i, dense=0.05) for i, t in enumerate(SEED_PARAGRAPHS, start=1)]
    sel = extract("How long should sourdough proof?", ps, SETTINGS)
    assert sel.declined and "similarity 0.05 < 0.20" in sel.reason
    assert sel.sentences == [] and sel.short_answer is None


def test_low_coverage_declined() -> None:
    sel = extract("Who is the lead singer of the band?", seed_passages(), SETTINGS)
    assert sel.declined and "covers" in sel.reason
    named = extract("Who is the lead singer of Coldplay?", seed_passages(), SETTINGS)
    assert named.declined


def test_type_check_declines_a_when_question_without_a_date() -> None:
    ps = [passage("The treaty was signed by both kings in the great hall of the palace.")]
    question = "When was the treaty signed by both kings?"
    sel = extract(question, ps, SETTINGS)
    assert sel.declined and "date" in sel.reason
    assert not extract(question, ps, SETTINGS.replace(type_check=False)).declined
    dated = [passage("The treaty was signed by both kings in 1763 in the great hall.")]
    sel = extract(question, dated, SETTINGS)
    assert not sel.declined and sel.short_answer == "1763"


def test_type_check_wants_a_number_for_how_many() -> None:
    ps = [passage("The orchestra has violinists, cellists and a harpist.")]
    assert extract("How many violinists does the orchestra have?", ps, SETTINGS).declined


def test_negated_question_declined_when_the_sentence_is_positive() -> None:
    ps = [passage("The skin prevents pathogens from entering an organism.")]
    sel = extract("What is not prevented from entering an organism?", ps, SETTINGS)
    assert sel.declined and "'not'" in sel.reason
    assert not extract(
        "What is not prevented from entering an organism?",
        ps,
        SETTINGS.replace(negation_check=False),
    ).declined


def test_sentence_negating_a_question_word_is_declined_unless_not_but() -> None:
    ps = [passage("Tumor cells express antigens that are not found on normal cells.")]
    sel = extract("What do tumors express that are also found on normal cells?", ps, SETTINGS)
    assert sel.declined and "passage says 'not'" in sel.reason
    ps = [passage("Eliot was motivated not by a desire to secularize, but by convictions.")]
    assert not extract("What conviction motivated Eliot?", ps, SETTINGS).declined


def test_contrast_swap_declined() -> None:
    ps = [passage("In 2010 the Amazon rainforest experienced another severe drought.")]
    sel = extract(
        "In what year did the Amazon rainforest experience another mild drought?", ps, SETTINGS
    )
    assert sel.declined and "'mild'" in sel.reason and "'severe'" in sel.reason
    sel = extract(
        "In what year did the Amazon rainforest experience another severe drought?", ps, SETTINGS
    )
    assert not sel.declined and sel.short_answer == "2010"


def test_name_missing_from_the_passage_declined() -> None:
    ps = [passage("In March 1974 the Arab oil producers lifted the embargo against the U.S.")]
    sel = extract("What did Japan lift in March 1974?", ps, SETTINGS)
    assert sel.declined and "'Japan'" in sel.reason
    assert not extract("What did the producers lift in March 1974?", ps, SETTINGS).declined


def test_a_small_count_in_digits_matches_the_same_count_in_words() -> None:
    ps = [passage(SEED_PARAGRAPHS[2])]  # "... only four limited circumstances ..."
    sel = extract("what are the 4 circumstances", ps, SETTINGS)
    assert not sel.declined and "racketeering" in " ".join(s.text for s in sel.sentences)
    wrong = extract("what are the 5 circumstances", ps, SETTINGS)
    assert wrong.declined and "'5'" in wrong.reason


def test_no_passages_or_no_content_words_declined() -> None:
    assert extract("Who?", [], SETTINGS).declined
    sel = extract("What is it?", seed_passages(), SETTINGS)
    assert sel.declined and "no content words" in sel.reason


# ---- reranking


def test_rerank_moves_the_answering_passage_to_the_top() -> None:
    ps = [
        passage("The Normans conquered England in 1066. They built many castles.", n=1),
        passage("The Rhine is the longest river in Germany.", n=2),
        passage("Rollo was the first ruler of Normandy and founded the Norman dynasty.", n=3),
    ]
    out = rerank("Who was the first ruler of Normandy?", ps, SETTINGS)
    assert [p.n for p in out] == [1, 2, 3]
    assert out[0].chunk_id == "c3"
    assert [p.n for p in ps] == [1, 2, 3]  # inputs untouched
    assert len(rerank("Who was the first ruler of Normandy?", ps, SETTINGS, k=2)) == 2
    assert rerank("anything", [], SETTINGS) == []


def test_rerank_breaks_a_coverage_tie_by_dense_similarity() -> None:
    ps = [
        passage("Scenarios of the IPCC panel were applied by the researchers.", n=1, dense=0.3),
        passage("The IPCC panel is composed of representatives of governments.", n=2, dense=0.7),
    ]
    assert rerank("Who is on the IPCC panel?", ps, SETTINGS)[0].chunk_id == "c2"


# ---- support score (the citation check)


def test_support_score() -> None:
    text = " ".join(SEED_PARAGRAPHS)
    quoted = "Under U.S. law, there are only four limited circumstances in which it can be sought."
    assert support_score(quoted, text) == pytest.approx(1.0)
    assert support_score("Sessions instructs prosecutors to seek death penalties.", text) >= 0.8
    assert support_score("The Eiffel Tower is in Paris and was finished in 1889.", text) < 0.2
    assert support_score("", text) == 1.0


@pytest.mark.parametrize(
    ("name", "value"),
    [("min_support", 1.5), ("neighbour_weight", -0.1), ("rerank_weight", 2), ("min_dense", 3)],
)
def test_settings_reject_out_of_range_values(name: str, value: float) -> None:
    with pytest.raises(SettingsError, match=f"{name} must be between .* got {value}"):
        ChatSettings(**{name: value})


def test_semantic_similarity_rescues_a_paraphrase_only_when_words_do_not_match() -> None:
    ps = [
        passage(
            "The committee postponed the vote until the spring session. "
            "Lunch was served in the main hall.",
            dense=0.3,
        )
    ]
    question = "When will members decide?"  # shares no content word with the answer

    def similarity(q: str, sentences: list[str]) -> list[float]:
        calls.append(sentences)
        return [0.9 if "postponed" in s else 0.05 for s in sentences]

    calls: list[list[str]] = []
    words_only = extract(question, ps, SETTINGS.replace(type_check=False))
    assert words_only.declined
    with_meaning = extract(question, ps, SETTINGS.replace(type_check=False), similarity=similarity)
    assert not with_meaning.declined and "postponed" in with_meaning.sentences[0].text
    assert with_meaning.features["best_semantic"] == 0.9
    off = extract(
        question, ps, SETTINGS.replace(type_check=False, semantic_weight=0.0), similarity=similarity
    )
    assert off.declined and len(calls) == 1
    # When words already match well, sentences are not embedded at all.
    extract("When did the committee postpone the vote?", ps, SETTINGS, similarity=similarity)
    assert len(calls) == 1


def test_supporting_sentences_skip_headings_and_overlap_duplicates() -> None:
    body = (
        "The Zorblat Festival of Quimper\n\nThe Zorblat festival is held every year in June. "
        "It was founded in 1987 by a baker."
    )
    first = Passage(
        chunk_id="a",
        text=body,
        source="z.txt",
        title="Zorblat",
        start=0,
        end=len(body),
        n=1,
        dense_score=0.7,
    )
    tail = body[32:]  # an overlapping chunk holding the same two sentences
    second = Passage(
        chunk_id="b",
        text=tail,
        source="z.txt",
        title="Zorblat",
        start=32,
        end=len(body),
        n=2,
        dense_score=0.6,
    )
    sel = extract("When is the Zorblat festival held?", [first, second], SETTINGS)
    texts = [s.text for s in sel.sentences]
    assert texts[0] == "The Zorblat festival is held every year in June."
    assert "The Zorblat Festival of Quimper" not in texts
    assert len(texts) == len(set(texts))


def test_a_name_is_the_short_answer_only_from_a_sentence_that_matches_the_question() -> None:
    passages = [passage(p, n=i + 1) for i, p in enumerate(SEED_PARAGRAPHS)]
    sent = extract("Who sent the memo?", passages, SETTINGS)
    assert not sent.declined and sent.short_answer == "Sessions"
    # No sentence says whom Sessions blames in the question's words: the best one is quoted,
    # but no name in it is offered as the answer.
    blame = extract("who does sessions blame for the opioid crisis", passages, SETTINGS)
    assert not blame.declined
    assert blame.short_answer is None


def test_a_possessive_name_before_a_noun_is_not_a_person_answer() -> None:
    from chatbot.answer_types import PERSON, candidates

    sentence = "Richard Teng, Binance’s former global head of regional markets, will be CEO."
    found = [c.text for c in candidates(PERSON, sentence, "who is richard teng")]
    assert "Binance’s" not in found
    assert found == ["CEO"]
    # A possessive at the end of a name list is still a name ("Trump's" ends the sentence).
    assert [c.text for c in candidates(PERSON, "It was the plan of Trump.", "whose plan?")] == [
        "Trump"
    ]


def test_a_policy_yes_no_question_is_answered_by_a_negated_sentence() -> None:
    from chatbot.question import shape

    ps = [passage("Visitors are welcome. Dogs are not allowed inside the galleries.")]
    sel = extract("Are dogs allowed?", ps, SETTINGS, shape=shape("Are dogs allowed?"))
    assert not sel.declined and "not allowed" in sel.sentences[0].text
    # Not a yes/no question: the same negated sentence is still a near miss.
    near = extract("Which dogs are allowed?", ps, SETTINGS, shape=shape("Which dogs are allowed?"))
    assert near.declined and "'not'" in near.reason


def test_a_when_question_takes_a_clock_time() -> None:
    ps = [passage("The museum opens at nine in the morning. The museum closes at 17:30.")]
    assert extract("When does the museum open?", ps, SETTINGS).short_answer == (
        "nine in the morning"
    )
    assert extract("When does the museum close?", ps, SETTINGS).short_answer == "17:30"


def test_a_when_question_takes_the_time_a_rule_allows() -> None:
    """Policy questions ask "when" of a rule: "within 30 days" answers, where a date-only
    reading declined for want of a date."""
    ps = [
        passage(
            "Travel expenses are reimbursed within 30 days of a claim. Claims must be "
            "submitted within three months of the expense, with receipts."
        )
    ]
    got = extract("When are travel expenses reimbursed?", ps, SETTINGS)
    assert not got.declined and got.short_answer == "within 30 days"
    got = extract("When must claims be submitted?", ps, SETTINGS)
    assert got.short_answer == "within three months"


def test_a_markdown_heading_is_never_the_answer() -> None:
    """ "## Sick leave" holds the question's word and nothing else: the sentence under it is
    quoted, not the heading."""
    text = (
        "## Sick leave\n\nEmployees who are ill must tell their manager on the first day. "
        "Sick pay is paid in full for the first 20 working days."
    )
    got = extract("what happens if I'm sick", [passage(text)], SETTINGS)
    assert not got.declined
    assert not any(s.text.startswith("#") for s in got.sentences)
    assert got.sentences[0].text.startswith("Sick pay is paid in full")
