"""The document-QA agent's pieces without a store: answers in canonical form, the offline stand-in reader that
answers from the case file's facts, and the answer types' choices."""

from __future__ import annotations

import pytest

from agents.case_reader import CaseReader, other_value, twin_of
from agents.document_qa import READING, choices
from agents.policy import Field, ReadingTask
from agents.qa_cases import NONE, Case, canonical_number
from sim.scenario.model import AgentAnswer

YES_NO = Field("answer", "yes or no", ("yes", "no", NONE))
NUMBER = Field("answer", "a number")


def case(answer: str, gold: str = "p1", step: str = "decide", question: str = "Is it capped?") -> Case:
    return Case("c1", 2, None, {step: question}, {step: frozenset({gold})}, {step: answer},
                {step: ("Acme", "Beta")}, {})


def task(ids: tuple[str, ...], field: Field = YES_NO, slip: bool = False, question: str = "Is it capped?"):
    return ReadingTask("decide", READING, "Answer.", tuple(f"text of {i}" for i in ids), (field,), question,
                       slip=slip, passage_ids=ids)


@pytest.mark.parametrize("text,canonical", [("30", "30"), ("$2.50", "2.5"), ("1,000.50", "1000.5"), ("0.00", "0"),
                                            ("-3", "-3"), ("1e3", "1000"), ("abc", None), ("NaN", None),
                                            ("Infinity", None), ("", None)])
def test_numbers_are_compared_in_canonical_form(text, canonical):
    assert canonical_number(text) == canonical


def test_another_value_of_each_type():
    assert [other_value(v, YES_NO) for v in ("yes", "no", NONE)] == ["no", "yes", "yes"]
    labels = Field("answer", "", ("Texas", "Delaware", "New York", NONE))
    assert [other_value(v, labels) for v in ("Texas", "New York")] == ["Delaware", "Texas"]
    assert [other_value(v, NUMBER) for v in ("2.5", "0", "")] == ["3.5", "1", "0"]


def test_twin_ids_name_their_original_and_type():
    assert twin_of("c1/cap#negation_flip") == ("c1/cap", "negation_flip")
    assert twin_of("c1/cap#draft") == ("c1/cap#draft", None)  # '#' in an id is not a twin by itself
    assert twin_of("c1/cap") == ("c1/cap", None)


def test_the_stand_in_trusts_the_first_gold_passage_it_reads():
    reader = CaseReader([case("yes")])
    assert reader.read(task(("p9", "p1"))) == {"answer": "yes"}  # the gold passage, wherever it ranks
    assert reader.read(task(("p1#negation_flip", "p1"))) == {"answer": "no"}  # a twin ranked first misleads it
    assert reader.read(task(("p9", "p8"))) == {"answer": NONE}  # no gold: the passages do not say
    assert reader.read(task(("p1",), slip=True)) == {"answer": "no"}  # a reasoning slip
    assert reader.read(task(("p1",), question="Another question?")) == {"answer": NONE}  # facts are per question
    numbers = CaseReader([case("2.5")])
    assert numbers.read(task(("p1#numeric_swap",), NUMBER)) == {"answer": "3.5"}
    assert numbers.read(task(("p2",), NUMBER)) == {"answer": ""}


def test_each_answer_type_offers_its_choices_and_none():
    c = case("Acme")
    assert choices(AgentAnswer(type="yes_no"), c, "decide") == ("yes", "no", NONE)
    assert choices(AgentAnswer(type="label", labels=["a", "b"]), c, "decide") == ("a", "b", NONE)
    assert choices(AgentAnswer(type="party"), c, "decide") == ("Acme", "Beta", NONE)
    assert choices(AgentAnswer(type="number"), c, "decide") == ()
    schema = task(("p1",), Field("answer", "the party", ("Acme", "Beta", NONE))).json_schema()
    assert schema["properties"]["answer"]["enum"] == ["Acme", "Beta", NONE] and schema["required"] == ["answer"]


def test_a_party_question_takes_its_parties_from_the_case(tmp_path):
    from agents.qa_cases import read_cases
    from sim.core.errors import DataFileError
    from sim.scenario.model import Agent, AgentCorpus

    agent = Agent(corpus=AgentCorpus(path="corpus.csv"), cases="cases.csv",
                  answers={"decide": AgentAnswer(type="party")})
    path = tmp_path / "cases.csv"
    header = "decide.question,decide.gold,decide.answer,decide.parties\n"

    def read(rows: str):
        path.write_text(header + rows, encoding="utf-8")
        return read_cases(path, agent, ["decide"], [], {"p1": 1}, frozenset(), "corpus.csv")

    (c,) = read("Who indemnifies?,p1,Beta Ltd,Acme Inc | Beta Ltd\n")
    assert c.parties["decide"] == ("Acme Inc", "Beta Ltd") and c.answers["decide"] == "Beta Ltd"
    assert c.id == "case-2" and c.group is None
    with pytest.raises(DataFileError, match=r"cases.csv:3: decide.answer: 'Gamma' is not one of the parties"):
        read("Who indemnifies?,p1,Beta Ltd,Acme Inc | Beta Ltd\nWho?,p1,Gamma,Acme Inc|Beta Ltd\n")
    with pytest.raises(DataFileError, match=r"cases.csv:2: decide.parties: .*at least two distinct parties"):
        read("Who indemnifies?,p1,Acme Inc,Acme Inc|Acme Inc\n")
