"""Users' corpus, queries and tickets files: read exactly as written, or refused with file:line and what would be
right. Real files in tmp_path; nothing here loads the embedding model (only its tokenizer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.ticket_triage import ticket_triage_domain
from sim.cli import app
from sim.core.errors import CascadeError, DataFileError
from sim.core.limits import MAX_ID_CHARS, MAX_PASSAGE_CHARS, MAX_PASSAGES, MAX_PROBES
from sim.core.table_source import Limits, read_table
from sim.retrieval.corpus import read_corpus
from sim.retrieval.embedding import CHARS_PER_TOKEN_BOUND, Embedder, Readable
from sim.retrieval.measure import ProbeSettings
from sim.retrieval.twins import twin_id, twins_of

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
CLAUSE = "The Supplier shall indemnify the Customer within thirty (30) days of any direct claim."


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def refused(path: Path, **kwargs) -> str:
    with pytest.raises(DataFileError) as info:
        read_corpus(path, **kwargs)
    return str(info.value)


# --- reading exactly what was written --------------------------------------------------------------------------

def test_a_field_longer_than_the_csv_module_default_is_read_whole(tmp_path):
    long = "word " * 40_000  # 200,000 characters: over csv's default field_size_limit of 131,072
    corpus = read_corpus(write(tmp_path, "c.csv", f'id,text\np1,"{long}"\np2,{CLAUSE}\n'))
    assert [len(p.text) for p in corpus.passages] == [len(long.strip()), len(CLAUSE)]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0c", "\x1c", "\x1e"])
def test_characters_splitlines_would_split_on_stay_inside_their_value(tmp_path, separator):
    text = f"before{separator}after"
    csv_file = write(tmp_path, "c.csv", f'id,text\np1,"{text}"\np2,plain {text}\n')
    assert [p.text for p in read_corpus(csv_file).passages] == [text, f"plain {text}"]
    jsonl = write(tmp_path, "c.jsonl", json.dumps({"id": "p1", "text": text}, ensure_ascii=False) + "\n")
    assert read_corpus(jsonl).passages[0].text == text


def test_line_numbers_count_physical_lines_after_multi_line_quoted_fields(tmp_path):
    path = write(tmp_path, "c.csv", 'id,text\np1,"two\nlines"\np2,"three\n\nlines"\r\n\np3,ok\u2028still line 8\np4,\n')
    assert "c.csv:9: text: is empty" in refused(path)
    # The error inside a multi-line record is reported where the record starts.
    path = write(tmp_path, "d.csv", 'id,text\np1,"two\nlines"\np2,"three\nlines",extra\n')
    assert "d.csv:4: 3 fields, the header has 2" in refused(path)


def test_a_quoted_multi_line_value_keeps_its_line_breaks(tmp_path):
    path = write(tmp_path, "c.csv", 'id,text\r\np1,"first\r\nsecond"\r\n')
    assert read_corpus(path).passages[0].text == "first\r\nsecond"


def test_tsv_and_a_utf8_byte_order_mark(tmp_path):
    path = write(tmp_path, "c.tsv", "\ufeffid\ttext\np1\tcomma, inside\n")
    corpus = read_corpus(path)
    assert [(p.id, p.text) for p in corpus.passages] == [("p1", "comma, inside")]


def test_beir_style_jsonl_uses_its_underscore_id(tmp_path):
    rows = [{"_id": "doc7", "title": "T", "text": CLAUSE}, {"_id": "doc9", "title": "U", "text": "Other."}]
    path = write(tmp_path, "corpus.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert [p.id for p in read_corpus(path).passages] == ["doc7", "doc9"]


def test_without_an_id_column_the_record_number_is_the_id(tmp_path):
    path = write(tmp_path, "c.csv", 'text\n"a\nb"\nc\n')
    assert [(p.id, p.text) for p in read_corpus(path).passages] == [("1", "a\nb"), ("2", "c")]


# --- ids -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_id, fragment", [
    (twin_id("p0", "role_swap"), "'#twin:', the syntax reserved for the ids of structural twins"),
    ("p0#twin:anything", "'#twin:', the syntax reserved"),
    ("a\u2028b", "U+2028"),
    ("tab\there", "U+0009"),
    ("zero\u200bwidth", "U+200B"),
    ("x" * (MAX_ID_CHARS + 1), f"at most {MAX_ID_CHARS}"),
])
def test_ids_that_could_mislead_are_refused_with_file_and_line(tmp_path, bad_id, fragment):
    path = write(tmp_path, "c.jsonl", "".join(json.dumps(r) + "\n" for r in [
        {"id": "p0", "text": CLAUSE}, {"id": bad_id, "text": "A second passage."}]))
    message = refused(path)
    assert message.startswith(f"{path}:2: id: ") and fragment in message


def test_a_twin_id_in_a_csv_corpus_is_refused_not_overwritten(tmp_path):
    path = write(tmp_path, "c.csv", f"id,text\np0,{CLAUSE}\np0#twin:role_swap,The Customer shall pay.\n")
    assert refused(path).startswith(f"{path}:3: id: passage id 'p0#twin:role_swap' contains '#twin:'")


def test_duplicate_and_empty_ids_and_empty_texts_name_their_lines(tmp_path):
    assert "c.csv:4: id: passage id 'p1' appears twice (lines 2 and 4)" in refused(
        write(tmp_path, "c.csv", "id,text\np1,a\np2,b\np1,c\n"))
    assert "e.csv:3: id: is empty" in refused(write(tmp_path, "e.csv", "id,text\np1,a\n  ,b\n"))
    assert "t.jsonl:2: text: is empty" in refused(write(tmp_path, "t.jsonl", '{"id":"a","text":"x"}\n'
                                                                            '{"id":"b","text":" \\n "}\n'))


# --- values that are not one string ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, kind", [({"a": 1}, "an object"), (["a", "b"], "a list"), (None, "null")])
def test_nested_and_null_json_values_are_refused_with_line_and_field(tmp_path, value, kind):
    path = write(tmp_path, "c.jsonl", json.dumps({"id": "a", "text": CLAUSE}) + "\n\n"
                 + json.dumps({"id": "b", "text": value}) + "\n")
    message = refused(path)
    assert message.startswith(f"{path}:3: text: is {kind}") and "must be a string" in message


def test_json_numbers_and_booleans_are_read_as_written(tmp_path):
    from sim.retrieval.corpus import read_corpus

    path = write(tmp_path, "c.jsonl", json.dumps({"id": 7, "text": CLAUSE}) + "\n"
                 + json.dumps({"id": 1.5, "text": CLAUSE + " more"}) + "\n" + json.dumps({"id": True, "text": "x y"}) + "\n")
    assert [p.id for p in read_corpus(path).passages] == ["7", "1.5", "true"]
    bad = write(tmp_path, "d.jsonl", '{"id": "a", "text": NaN}\n')
    assert refused(bad).startswith(f"{bad}:1: text: is not a finite number")


def test_bad_json_and_repeated_keys(tmp_path):
    assert "c.jsonl:2: not valid JSON" in refused(write(tmp_path, "c.jsonl", '{"id":"a","text":"x"}\n{"id":\n'))
    assert "d.jsonl:1: text: appears twice in one object" in refused(
        write(tmp_path, "d.jsonl", '{"id":"a","text":"x","text":"y"}\n'))
    assert "e.jsonl:1: each line must be a JSON object" in refused(write(tmp_path, "e.jsonl", '["a", "b"]\n'))


# --- bytes that are not UTF-8 text ----------------------------------------------------------------------------

def test_non_utf8_bytes_are_refused_with_line_and_column(tmp_path):
    message = refused(write(tmp_path, "c.csv", b"id,text\np1,fine\np2,caf\xe9 au lait\n"))
    assert "c.csv:3: not UTF-8 text (column 7, byte 0xe9)" in message and "save the passages file as UTF-8" in message


def test_nul_bytes_and_utf16_are_refused_with_their_line(tmp_path):
    assert "c.csv:3: a NUL character (column 6)" in refused(write(tmp_path, "c.csv", b"id,text\np1,a\np2,he\x00llo\n"))
    utf16 = write(tmp_path, "u.csv", "id,text\np1,a\n".encode("utf-16"))
    assert "u.csv:1: UTF-16 text" in refused(utf16)


# --- CSV structure -------------------------------------------------------------------------------------------

def test_an_unquoted_comma_is_refused_rather_than_cutting_the_text(tmp_path):
    message = refused(write(tmp_path, "c.csv", "id,text\np1,Pay within 30 days, or else.\n"))
    assert "c.csv:2: 3 fields, the header has 2" in message and "double quotes" in message


def test_a_repeated_or_missing_header_column_is_refused(tmp_path):
    assert "c.csv:1: column 'text' appears twice" in refused(write(tmp_path, "c.csv", "id,text,text\np1,a,b\n"))
    message = refused(write(tmp_path, "m.csv", "id,body\np1,a\n"))
    assert "m.csv:1: missing column(s) ['text']; the header has ['id', 'body']" in message
    assert "--text-column" in message


def test_a_header_without_rows_and_an_empty_file(tmp_path):
    assert "has a header but no rows" in refused(write(tmp_path, "h.csv", "id,text\n\n"))
    assert "the passages file is empty" in refused(write(tmp_path, "e.csv", "\n\n"))


# --- caps ----------------------------------------------------------------------------------------------------

def test_the_record_cap_is_refused_at_the_first_record_over_it(tmp_path):
    path = write(tmp_path, "c.csv", "id,text\n" + "".join(f"p{i},t{i}\n" for i in range(4)))
    assert len(read_table(path, "passages", ["id", "text"], limits=Limits(rows=4, chars=10)).records) == 4
    with pytest.raises(DataFileError, match=r"c\.csv:5: more than 3 records; that is the cap"):
        read_table(path, "passages", ["id", "text"], limits=Limits(rows=3, chars=10))


@pytest.mark.parametrize("name, content", [("c.csv", 'id,text\np1,short\np2,"0123456789\nA"\n'),
                                           ("c.jsonl", '{"id":"p1","text":"short"}\n\n{"id":"p2","text":"0123456789A"}\n')])
def test_the_character_cap_is_refused_with_the_line(tmp_path, name, content):
    with pytest.raises(DataFileError, match=rf"{name}:3: .*(11 characters; at most 10|longer than 10 characters)"):
        read_table(write(tmp_path, name, content), "passages", ["id", "text"], limits=Limits(rows=9, chars=10))


def test_a_line_beyond_any_value_cap_is_refused_without_reading_it_whole(tmp_path):
    limits = Limits(rows=9, chars=10)
    path = write(tmp_path, "c.jsonl", '{"id":"p1","text":"a"}\n' + "x" * (limits.line_bytes + 10) + "\n")
    with pytest.raises(DataFileError, match=r"c\.jsonl:2: the line is longer than"):
        read_table(path, "passages", ["id", "text"], limits=limits)


def test_the_caps_are_generous_and_documented():
    assert MAX_PASSAGES >= 1_000_000 and MAX_PASSAGE_CHARS >= 5_000_000  # a 5 MB passage is read, then cut
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    for number in (MAX_PASSAGES, MAX_PASSAGE_CHARS, MAX_PROBES):
        assert f"{number:,}" in readme


# --- queries and probes --------------------------------------------------------------------------------------

def test_a_query_naming_an_unknown_gold_passage_names_its_line(tmp_path):
    passages = write(tmp_path, "p.csv", f"id,text\np1,{CLAUSE}\n")
    queries = write(tmp_path, "q.csv", 'query,gold_id\n"who\nindemnifies",p1\nwho pays,p9\n')
    with pytest.raises(DataFileError, match=r"q\.csv:4: gold_id: names gold passage 'p9', which is not in"):
        read_corpus(passages, queries_file=queries)


@pytest.mark.parametrize("settings", [{"probes": 0}, {"probes": MAX_PROBES + 1}, {"k": 0}, {"seed": -1},
                                      {"probes": 2.5}, {"probes": True}])
def test_probe_settings_out_of_range_are_refused(settings):
    with pytest.raises(CascadeError, match=f"probe setting {next(iter(settings))} = "):
        ProbeSettings(**settings)


# --- what the model reads ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return Embedder(None, cache_dir=tmp_path_factory.mktemp("cache"))


def _tokens(embedder: Embedder, text: str) -> int:
    return len(embedder.readable._load().encode(text, add_special_tokens=False).ids)


def test_a_long_text_is_cut_after_the_last_word_the_model_reads(embedder):
    content = embedder.readable.tokens - 2  # [CLS] and [SEP] take two of the model's tokens
    assert embedder.readable.tokens == 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)
    long = (CLAUSE + " ") * 60_000  # 5 MB
    cut = embedder.readable(long)
    assert long.startswith(cut) and len(cut) < 2_000
    assert _tokens(embedder, cut) == content  # the clause's words end on token boundaries here
    assert embedder.readable(cut) == cut and embedder.readable(CLAUSE) == CLAUSE


def test_the_cut_keeps_whole_words_and_handles_whitespace_heavy_text(embedder):
    content = embedder.readable.tokens - 2
    text = ("unbelievable" + " " * 300) * 2 * content  # one word-piece pair per word, far apart
    cut = embedder.readable(text)
    assert text.startswith(cut) and cut.endswith("unbelievable")
    assert content <= _tokens(embedder, cut) < content + 4


def test_twins_of_a_cut_passage_cost_what_a_short_passage_costs(embedder):
    long = (CLAUSE + " ") * 60_000
    cut = embedder.readable(long)
    twins, _ = twins_of(cut, 0, "p")
    assert twins and all(len(t.text) < len(cut) + 40 for t in twins)
    # The characters the twin editor scans: the cut text's, a ratio under 1/1000 of the whole passage's.
    assert len(cut) / len(long) < 1e-3


def test_without_a_tokenizer_file_the_character_bound_applies(tmp_path):
    readable = Readable(tmp_path, 100)
    assert readable("x" * 10_000) == "x" * (100 * CHARS_PER_TOKEN_BOUND)
    assert Readable(tmp_path, None)("x" * 10_000) == "x" * 10_000


# --- the command line ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, fragment", [
    ("c.csv", f"id,text\np0,{CLAUSE}\np0#twin:role_swap,The Customer shall pay.\n", "c.csv:3: id: passage id"),
    ("c.jsonl", '{"id":"a","text":{"a":1}}\n', "c.jsonl:1: text: is an object"),
    ("c.csv", b"id,text\np1,a\np2,\xff\n", "c.csv:3: not UTF-8 text"),
    ("c.csv", 'id,text\np1,"a\nb"\np2,\n', "c.csv:4: text: is empty"),
])
def test_measure_on_a_bad_corpus_exits_2_with_file_and_line(tmp_path, name, content, fragment):
    path = write(tmp_path, name, content)
    result = runner.invoke(app, ["measure", "--corpus", str(path), "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())


def test_the_cascade_command_reports_a_bad_corpus_without_a_traceback(tmp_path):
    write(tmp_path, "corpus.csv", 'id,text\np1,"a\u2028b"\np1,again\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CASCADESIM_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "sim.cli", "measure", "--corpus", "corpus.csv"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "corpus.csv:3: id: passage id 'p1' appears twice (lines 2 and 3)" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_measure_refuses_too_many_probes(tmp_path):
    path = write(tmp_path, "c.csv", f"id,text\np1,{CLAUSE}\n")
    result = runner.invoke(app, ["measure", "--corpus", str(path), "--probes", str(MAX_PROBES + 1),
                                 "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--probes" in result.output  # refused with the argument, before reading


# --- the tickets file of the agent engine ----------------------------------------------------------------------

def test_a_tickets_file_without_its_columns_names_the_file_and_the_columns_found(tmp_path):
    path = write(tmp_path, "tickets.csv", "message,label\nmy card is lost,lost_or_stolen_card\n")
    with pytest.raises(DataFileError) as info:
        ticket_triage_domain(path)
    assert str(info.value).startswith(f"{path}:1: missing column(s) ['text', 'category']; the header has "
                                      "['message', 'label']")


def test_a_tickets_file_follows_the_corpus_rules(tmp_path):
    long = "my card " * 20_000  # 160,000 characters: over csv's default field limit
    path = write(tmp_path, "tickets.csv", f'text,category\n"I lost\u2028my card",lost_or_stolen_card\n'
                                          f'"{long}",lost_or_stolen_card\n"two\nlines",card_arrival\n')
    domain = ticket_triage_domain(path)
    assert [(e.id, e.text[:15]) for e in domain.episodes] == [
        ("ticket/2", "I lost\u2028my card"), ("ticket/3", long[:15]), ("ticket/4", "two\nlines")]
    bad = write(tmp_path, "bad.csv", "text,category\nfine,card_arrival\n\"a\nb\",\n")
    with pytest.raises(DataFileError, match=r"bad\.csv:3: category: is empty"):
        ticket_triage_domain(bad)


def test_a_bad_tickets_file_exits_2_from_the_cli(tmp_path):
    path = write(tmp_path, "tickets.csv", "text,category\nhello,card_arrival\nbye\xff,card_arrival\n".encode(
        "latin-1"))
    result = runner.invoke(app, ["run", str(ROOT / "scenarios" / "ticket_triage.yaml"), "--engine", "agent",
                                 "--tickets", str(path), "--instances", "2", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "tickets.csv:3: not UTF-8 text" in " ".join(result.output.split())
