"""Converters to the released LinkBERT JSON-lines format: hand-made inputs, then the real data
checked record by record (and byte by byte) against the shipped ``_hf`` files."""

from __future__ import annotations

import gzip
import json

import pytest

from linkbert.errors import BadInput, ConfigError
from linkbert.finetune import convert as cv


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- NER


def test_ner_sentences_split_at_blank_lines_docstart_dropped(tmp_path):
    raw = "-DOCSTART- 123\n\nAspirin\tB\nworks\tO\n.\tO\n\n\nHigh\tB\nfever\tI\n"
    _write(tmp_path / "raw" / "dev.tsv", raw)
    written = cv.convert("NCBI-disease", tmp_path / "raw", tmp_path / "out")
    assert written == {"dev": tmp_path / "out" / "tokcls" / "NCBI-disease_hf" / "dev.json"}
    assert read_jsonl(written["dev"]) == [
        {"tokens": ["Aspirin", "works", "."], "ner_tags": ["B", "O", "O"], "id": "0"},
        {"tokens": ["High", "fever"], "ner_tags": ["B", "I"], "id": "1"},
    ]


def test_ner_bad_lines_name_file_and_line(tmp_path):
    path = _write(tmp_path / "dev.tsv", "a\tO\nb O\n")
    with pytest.raises(BadInput, match=r"dev\.tsv, line 2: expected token<TAB>tag, got 1 fields"):
        cv.ner_records(path)
    path = _write(tmp_path / "dev.tsv", "a\tO\nb\tB-Disease\n")
    with pytest.raises(BadInput, match=r"line 2: label 'B-Disease' is not one of B, I, O"):
        cv.ner_records(path)


def test_pico_tags_are_kept(tmp_path):
    path = _write(tmp_path / "dev.tsv", "-DOCSTART- (1)\n\nXylitol\tI-INT\nfor\tO\nkids\tI-PAR\n")
    assert cv.ner_records(path, cv._PICO)[0]["ner_tags"] == ["I-INT", "O", "I-PAR"]


def test_empty_split_is_an_error(tmp_path):
    path = _write(tmp_path / "dev.tsv", "-DOCSTART- 1\n\n\n")
    with pytest.raises(BadInput, match="dev.tsv: no examples"):
        cv.ner_records(path)
    with pytest.raises(BadInput, match="none of train.tsv, dev.tsv, test.tsv in this folder"):
        cv.convert("BC2GM", tmp_path / "nothing", tmp_path / "out")


def test_split_option_picks_one_blurb_split(tmp_path):
    _write(tmp_path / "raw" / "train.tsv", "a\tO\n")
    _write(tmp_path / "raw" / "test.tsv", "b\tB\n")
    assert list(cv.convert("BC2GM", tmp_path / "raw", tmp_path / "out", split="test")) == ["test"]


# ---------------------------------------------------------------- sequence classification


def test_relation_header_skipped_and_false_becomes_zero(tmp_path):
    _write(tmp_path / "gad" / "train.tsv", "index\tsentence\tlabel\n0\t@GENE$ in @DISEASE$ .\t1\n1\tno link\t0\n")
    _write(tmp_path / "ddi" / "dev.tsv", "d1.s0.p0\t@DRUG$ and @DRUG$ . \tDDI-false\nd1.s0.p1\tx\tDDI-effect\n")
    gad = read_jsonl(cv.convert("GAD", tmp_path / "gad", tmp_path / "out")["train"])
    ddi = read_jsonl(cv.convert("DDI", tmp_path / "ddi", tmp_path / "out")["dev"])
    assert gad == [{"id": "0", "sentence": "@GENE$ in @DISEASE$ .", "label": "1"},
                   {"id": "1", "sentence": "no link", "label": "0"}]
    assert ddi[0] == {"id": "d1.s0.p0", "sentence": "@DRUG$ and @DRUG$ . ", "label": "0"}  # trailing space kept
    assert ddi[1]["label"] == "DDI-effect"


def test_relation_unknown_label_and_wrong_columns(tmp_path):
    path = _write(tmp_path / "dev.tsv", "a\tsentence\tfalse\nb\tsentence\tCPR:7\n")
    with pytest.raises(BadInput, match=r"dev\.tsv, line 2: label 'CPR:7' is not one of"):
        cv.relation_records(path, "chemprot")
    path = _write(tmp_path / "dev.tsv", "a\tsentence\n")
    with pytest.raises(BadInput, match="line 1: expected 3 tab-separated fields, got 2"):
        cv.relation_records(path, "chemprot")


def test_biosses_float_labels(tmp_path):
    path = _write(tmp_path / "dev.tsv", "pair_id\tsent1\tsent2\tscore\n88\tA.\tB.\t1.2\n")
    assert cv.biosses_records(path) == [{"id": "88", "sentence1": "A.", "sentence2": "B.", "label": 1.2}]
    path = _write(tmp_path / "dev.tsv", "88\tA.\tB.\thigh\n")
    with pytest.raises(BadInput, match="line 1: score 'high' is not a number in 0-4"):
        cv.biosses_records(path)


def test_hoc_groups_sentences_and_ors_labels(tmp_path):
    zeros = ",".join(f"{k}_0" for k in range(10))
    five = zeros.replace("5_0", "5_1")
    eight = zeros.replace("8_0", "8_1")
    raw = f"labels\tsentence\tindex\n{zeros}\tFirst .\t11_s0\n{five}\tSecond .\t11_s1\n" \
          f"{eight}\tThird .\t11_s2\n{zeros}\tOther .\t22_s0\n"
    path = _write(tmp_path / "dev.tsv", raw)
    assert cv.hoc_records(path) == [
        {"sentence": "First . Second . Third .", "label": [0, 0, 0, 0, 0, 1, 0, 0, 1, 0], "id": "11"},
        {"sentence": "Other .", "label": [0] * 10, "id": "22"},
    ]
    path = _write(tmp_path / "dev.tsv", "0_0,1_2\tx\t1_s0\n")
    with pytest.raises(BadInput, match="line 1: expected labels 0_v"):
        cv.hoc_records(path)


def test_yes_no_questions_are_stripped(tmp_path):
    path = _write(tmp_path / "dev.tsv", "q1\t Is it? \t Context.  \tyes\n")
    assert cv.yes_no_records(path, "bioasq") == [
        {"id": "q1", "sentence1": "Is it?", "sentence2": "Context.", "label": "yes"}]
    path = _write(tmp_path / "dev.tsv", "q1\tIs it?\tContext.\tmaybe\n")
    with pytest.raises(BadInput, match="label 'maybe' is not one of no, yes"):
        cv.yes_no_records(path, "bioasq")


# two entries in PubMedQA's official schema (ori_pqal.json, pqal_fold*/*_set.json), hand-made
PUBMEDQA_ENTRY = {
    "QUESTION": " Do mitochondria play a role in remodelling lace plant leaves during programmed cell death? ",
    "CONTEXTS": ["Programmed cell death (PCD) is the regulated death of cells within an organism. ", "",
                 "  The lace plant produces perforations in its leaves through PCD."],
    "LABELS": ["BACKGROUND", "BACKGROUND", "RESULTS"], "MESHES": ["Alismataceae", "Apoptosis"],
    "YEAR": "2011", "reasoning_required_pred": "yes", "reasoning_free_pred": "yes", "final_decision": "yes",
    "LONG_ANSWER": "Results depicted mitochondrial dynamics in vivo as PCD progresses within the lace plant.",
}


def _pubmedqa_folder(root):
    (root / "pqal_fold0").mkdir(parents=True)
    entries = {"21645374": PUBMEDQA_ENTRY, "16418930": {**PUBMEDQA_ENTRY, "final_decision": "maybe"}}
    for name in ("pqal_fold0/train_set.json", "pqal_fold0/dev_set.json", "test_set.json"):
        (root / name).write_text(json.dumps(entries), encoding="utf-8")
    return root


def test_pubmedqa_from_its_json_files(tmp_path):
    written = cv.convert("pubmedqa", _pubmedqa_folder(tmp_path / "pubmedqa"), tmp_path / "out")
    assert set(written) == {"train", "dev", "test"} and written["dev"].parent.name == "pubmedqa_hf"
    lines = written["train"].read_text(encoding="utf-8").splitlines()
    # the released preprocess_blurb.py: stripped question, non-empty stripped contexts joined by a
    # space, final_decision as the label, json.dumps with the keys in this order; no long answer
    assert lines[0] == json.dumps({
        "id": "21645374", "sentence1": PUBMEDQA_ENTRY["QUESTION"].strip(),
        "sentence2": "Programmed cell death (PCD) is the regulated death of cells within an organism. "
                     "The lace plant produces perforations in its leaves through PCD.", "label": "yes"})
    assert json.loads(lines[1])["label"] == "maybe"


@pytest.mark.parametrize("change, message", [
    ({"final_decision": "perhaps"}, "final_decision 'perhaps' is not yes, no or maybe"),
    ({"CONTEXTS": "one string"}, "expected a field 'CONTEXTS' of type list"),
    ({"QUESTION": None}, "expected a field 'QUESTION' of type str"),
])
def test_a_bad_pubmedqa_entry_names_itself(tmp_path, change, message):
    path = _write(tmp_path / "test_set.json", json.dumps({"123": {**PUBMEDQA_ENTRY, **change}}))
    with pytest.raises(BadInput, match=f"entry 123: {message}"):
        cv.pubmedqa_records(path)


def test_a_pubmedqa_folder_without_its_files(tmp_path):
    with pytest.raises(BadInput, match="none of pqal_fold0/train_set.json"):
        cv.convert("pubmedqa", tmp_path, tmp_path / "out")


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_bytes(b"a\tO\n\xff\tO\n")
    with pytest.raises(BadInput, match=r"dev\.tsv, line 2: not UTF-8"):
        cv.ner_records(path)


# ---------------------------------------------------------------- QA


def _squad_json(answer_start):
    context = "Denver Broncos won Super Bowl 50."
    qas = [{"id": "q1", "question": " Who won? ", "answers": [{"answer_start": answer_start, "text": "Broncos"}]}]
    return json.dumps({"version": "1.1", "data": [{"title": "SB", "paragraphs": [{"context": context, "qas": qas}]}]})


def test_squad_json_to_qa(tmp_path):
    path = _write(tmp_path / "train-v1.1.json", _squad_json(7))
    written = cv.convert("squad", path, tmp_path / "out")
    assert written == {"train": tmp_path / "out" / "qa" / "squad_v1.1_hf" / "train.json"}
    assert read_jsonl(written["train"]) == [{
        "id": "q1", "question": "Who won?", "context": "Denver Broncos won Super Bowl 50.",
        "answers": {"answer_start": [7], "text": ["Broncos"]}, "title": "SB"}]


def test_squad_answer_not_in_context(tmp_path):
    path = _write(tmp_path / "dev.json", _squad_json(3))
    with pytest.raises(BadInput, match=r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers\[0\]: 'Broncos' is not at"):
        cv.squad_records(path)


def _mrqa_gz(path, split, paragraphs):
    lines = [json.dumps({"header": {"dataset": "HotpotQA", "split": split}})]
    lines += [json.dumps(p) for p in paragraphs]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _mrqa_paragraph(k, start=0):
    context = f"Paris{k} is the capital."
    answer = {"text": f"Paris{k}", "char_spans": [[start, start + 5]], "token_spans": [[0, 0]]}
    return {"context": context, "qas": [{"qid": f"q{k}", "question": f"Capital {k}? ", "answers": [f"Paris{k}"],
                                         "detected_answers": [answer]}]}


def test_mrqa_dev_split_in_house_by_paragraph_index(tmp_path):
    gz = _mrqa_gz(tmp_path / "HotpotQA.jsonl.gz", "dev", [_mrqa_paragraph(k) for k in range(4)])
    split_file = _write(tmp_path / "splits" / "inhouse_split_hotpot.json", json.dumps({"dev": [2, 0], "test": [1, 3]}))
    written = cv.convert("mrqa", gz, tmp_path / "out", inhouse_split=split_file.parent)  # a folder works too
    assert set(written) == {"dev", "test"}
    assert written["dev"].parent == tmp_path / "out" / "qa" / "hotpot_hf"
    dev = read_jsonl(written["dev"])
    assert [r["id"] for r in dev] == ["q2", "q0"]  # the split file's order
    assert dev[0] == {"id": "q2", "question": "Capital 2?", "context": "Paris2 is the capital.",
                      "answers": {"answer_start": [0], "text": ["Paris2"]}}
    assert [r["id"] for r in read_jsonl(written["test"])] == ["q1", "q3"]


def test_mrqa_train_and_errors(tmp_path):
    gz = _mrqa_gz(tmp_path / "train.jsonl.gz", "train", [_mrqa_paragraph(0), _mrqa_paragraph(1)])
    assert [r["id"] for r in read_jsonl(cv.convert("mrqa", gz, tmp_path / "out")["train"])] == ["q0", "q1"]

    dev = _mrqa_gz(tmp_path / "dev.jsonl.gz", "dev", [_mrqa_paragraph(0), _mrqa_paragraph(1)])
    with pytest.raises(ConfigError, match="needs --inhouse-split"):
        cv.convert("mrqa", dev, tmp_path / "out")
    split_file = _write(tmp_path / "split.json", json.dumps({"dev": [0], "test": [0]}))
    with pytest.raises(BadInput, match="do not cover the 2 paragraphs"):
        cv.convert("mrqa", dev, tmp_path / "out", inhouse_split=split_file)

    bad = _mrqa_gz(tmp_path / "bad.jsonl.gz", "train", [_mrqa_paragraph(0), _mrqa_paragraph(1, start=40)])
    with pytest.raises(BadInput, match=r"bad\.jsonl\.gz, line 3, question q1: answer .* no character span"):
        cv.convert("mrqa", bad, tmp_path / "out")


# ---------------------------------------------------------------- multiple choice


def test_mmlu_csv_to_mc(tmp_path):
    path = _write(tmp_path / "professional_medicine_test.csv", '"Q, with comma?",a1,b1,c1,d1,C\nQ2,a,b,c,d,A\n')
    written = cv.convert("mmlu", path, tmp_path / "out")
    assert written == {"test": tmp_path / "out" / "mc" / "mmlu_hf" / "test.json"}
    records = read_jsonl(written["test"])
    assert records[0] == {"id": "professional_medicine_test-00000", "sent1": "Q, with comma?", "sent2": "",
                          "ending0": "a1", "ending1": "b1", "ending2": "c1", "ending3": "d1", "label": 2}
    assert list(records[0]) == ["id", "sent1", "sent2", "ending0", "ending1", "ending2", "ending3", "label"]
    path = _write(tmp_path / "x_val.csv", "Q,a,b,c,d,E\n")
    with pytest.raises(BadInput, match=r"x_val\.csv, line 1: answer 'E' is not A-D"):
        cv.convert("mmlu", path, tmp_path / "out")


def test_medqa_jsonl_to_mc(tmp_path):
    item = {"question": "Which drug?", "answer": "C drug", "options": {"A": "a", "B": "b", "C": "C drug", "D": "d"},
            "meta_info": "step1", "answer_idx": "C"}
    path = _write(tmp_path / "phrases_no_exclude_dev.jsonl", json.dumps(item) + "\n")
    written = cv.convert("medqa", path, tmp_path / "out")
    assert read_jsonl(written["dev"]) == [{"id": "dev-00000", "sent1": "Which drug?", "sent2": "",
                                           "ending0": "a", "ending1": "b", "ending2": "C drug", "ending3": "d",
                                           "label": 2}]
    assert written["dev"].parent.name == "medqa_usmle_hf"
    item["options"]["E"] = "e"
    path = _write(tmp_path / "test.jsonl", json.dumps(item) + "\n")
    with pytest.raises(BadInput, match=r"test\.jsonl, line 1: expected text options A-D"):
        cv.convert("medqa", path, tmp_path / "out")


def test_cli_entry(tmp_path, capsys):
    from linkbert.cli import main

    _write(tmp_path / "raw" / "test.tsv", "a\tB\n")
    assert main(["convert", "JNLPBA", str(tmp_path / "raw"), str(tmp_path / "out")]) == 0
    assert "test: 1 examples" in capsys.readouterr().out
    assert main(["convert", "nope", str(tmp_path / "raw"), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("linkbert convert: error: unknown source 'nope'")
    assert main(["convert", "mmlu", str(_write(tmp_path / "questions.csv", "Q,a,b,c,d,A\n")), str(tmp_path)]) == 2
    assert "cannot tell the split from the file name; give --split" in capsys.readouterr().err


def test_the_command_declares_its_settings(tmp_path, capsys):
    from linkbert import settings
    from linkbert.cli import main, parse

    args = parse(["convert", "mmlu", "q.csv", "out", "--split", "val", "--name", "mine", "--inhouse-split", "f.json"])
    chosen = settings.from_arguments(cv.ConvertSettings, args)
    assert (chosen.source, chosen.input, chosen.out, chosen.split, chosen.name, chosen.inhouse_split) == \
        ("mmlu", "q.csv", "out", "val", "mine", "f.json")
    assert settings.from_arguments(cv.ConvertSettings, parse(["convert", "squad", "a", "b"])).split == ""
    questions = _write(tmp_path / "questions.csv", "Q,a,b,c,d,A\n")
    assert main(["convert", "mmlu", str(questions), str(tmp_path / "o"), "--split", "val", "--name", "mine"]) == 0
    assert "dev: 1 examples" in capsys.readouterr().out and (tmp_path / "o" / "mc" / "mine_hf" / "dev.json").is_file()


# ---------------------------------------------------------------- real data vs the shipped _hf files

SHIPPED = [  # (source, raw folder, shipped folder)
    ("NCBI-disease", "NCBI-disease", "tokcls/NCBI-disease_hf"),
    ("BC5CDR-chem", "BC5CDR-chem", "tokcls/BC5CDR-chem_hf"),
    ("BC5CDR-disease", "BC5CDR-disease", "tokcls/BC5CDR-disease_hf"),
    ("BC2GM", "BC2GM", "tokcls/BC2GM_hf"),
    ("bioasq", "BioASQ", "seqcls/bioasq_hf"),
    ("HoC", "HoC", "seqcls/HoC_hf"),
    ("DDI", "DDI", "seqcls/DDI_hf"),
]


@pytest.mark.data
@pytest.mark.parametrize("source, raw, shipped", SHIPPED, ids=[s[0] for s in SHIPPED])
def test_converter_matches_shipped_files(shared_data, tmp_path, source, raw, shipped):
    written = cv.convert(source, shared_data / "blurb" / "raw_tsv" / raw, tmp_path)
    shipped_dir = shared_data / "blurb" / "linkbert_format" / shipped
    shipped_splits = sorted(p.stem for p in shipped_dir.glob("*.json"))
    assert set(shipped_splits) <= set(written)  # some raw splits have no shipped file (BC2GM train)
    for split in shipped_splits:
        path = written[split]
        ours, theirs = read_jsonl(path), read_jsonl(shipped_dir / f"{split}.json")
        assert len(ours) == len(theirs), split
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert a == b, f"{split} record {i}"
            assert list(a) == list(b), f"{split} record {i}: field order"
        assert path.read_bytes() == (shipped_dir / f"{split}.json").read_bytes(), split


@pytest.mark.data
def test_real_files_without_shipped_counterpart(shared_data, tmp_path):
    raw = shared_data / "blurb" / "raw_tsv"
    gad = read_jsonl(cv.convert("GAD", raw / "GAD", tmp_path)["train"])
    assert len(gad) == 4261 and gad[0]["id"] == "0"  # header row skipped (4262 lines)
    assert {r["label"] for r in gad} == {"0", "1"}
    biosses = cv.convert("BIOSSES", raw / "BIOSSES", tmp_path)
    assert [len(read_jsonl(biosses[s])) for s in ("train", "dev", "test")] == [64, 16, 20]
    assert isinstance(read_jsonl(biosses["dev"])[0]["label"], float)
    chemprot = read_jsonl(cv.convert("chemprot", raw / "chemprot", tmp_path)["dev"])
    assert len(chemprot) == 11268  # this copy has no header row
    assert {r["label"] for r in chemprot} == {"0", "CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9"}
    jnlpba = cv.convert("JNLPBA", raw / "JNLPBA", tmp_path)
    # 18,546 sentences of the original JNLPBA training set, split 16,807 / 1,739; test 3,856
    assert [len(read_jsonl(jnlpba[s])) for s in ("train", "dev", "test")] == [16807, 1739, 3856]
    pico = read_jsonl(cv.convert("ebmnlp", raw / "ebmnlp", tmp_path)["test"])
    assert {t for r in pico for t in r["ner_tags"]} == {"O", "I-INT", "I-PAR", "I-OUT"}
    assert not any(tok.startswith("-DOCSTART-") for r in pico for tok in r["tokens"])


@pytest.mark.data
def test_real_mmlu_and_squad(shared_data, tmp_path):
    counts = {}
    for split in ("dev", "val", "test"):
        written = cv.convert("mmlu", shared_data / "mmlu" / f"professional_medicine_{split}.csv", tmp_path)
        (ours, path), = written.items()
        counts[ours] = len(read_jsonl(path))
    # the roles of the released run's files: the 5 few-shot exemplars its train_file, val its validation
    assert counts == {"train": 5, "dev": 31, "test": 272}
    squad = read_jsonl(cv.convert("squad", shared_data / "squad" / "dev-v1.1-part-a.json", tmp_path)["dev"])
    assert len(squad) == 5696
    first = squad[0]
    start, text = first["answers"]["answer_start"][0], first["answers"]["text"][0]
    assert first["context"][start:start + len(text)] == text == "Denver Broncos"


@pytest.mark.data
def test_mrqa_inhouse_split_files_are_partitions(shared_data):
    # the converter relies on dev + test covering every paragraph of the official dev set once
    for name in ("squad", "hotpot", "triviaqa", "searchqa", "naturalqa", "newsqa"):
        split = json.loads((shared_data / "mrqa_inhouse_splits" / f"inhouse_split_{name}.json").read_text())
        indices = split["dev"] + split["test"]
        assert sorted(indices) == list(range(len(indices))), name


# ---------------------------------------------------------------- HotpotQA


def _hotpot(qid: str, answer: str, kind: str = "bridge", split: str | None = "dev") -> dict:
    record = {"_id": qid, "question": " Which city is the capital of France? ", "answer": answer, "type": kind,
              "level": "easy", "supporting_facts": [["Paris", 0]],
              "context": [["Paris", ["Paris is the capital of France.", " It lies on the Seine."]],
                          ["Lyon", ["Lyon is a city in France."]]]}
    if split:
        record["hotpot_split"] = split
    return record


def test_hotpotqa_to_the_qa_format_with_mrqas_context(tmp_path):
    from linkbert.finetune.convert_qa import hotpotqa_records

    path = tmp_path / "hotpot_dev_distractor.json"  # the official files: one JSON list
    path.write_text(json.dumps([_hotpot("a", "Paris", split=None), _hotpot("b", "yes", "comparison", None),
                                _hotpot("c", "Marseille", split=None), _hotpot("d", "the seine", split=None)]))
    splits, dropped = hotpotqa_records(path)
    assert dropped == {"yes_no": 1, "answer_not_in_context": 1}
    (first, found), = [splits["dev"]]
    context = "[PAR] [TLE] Paris [SEP] Paris is the capital of France. It lies on the Seine. [PAR] [TLE] Lyon [SEP] " \
              "Lyon is a city in France."
    assert first == {"id": "a", "question": "Which city is the capital of France?", "context": context,
                     "answers": {"answer_start": [12], "text": ["Paris"]}, "type": "bridge", "level": "easy"}
    start = found["answers"]["answer_start"][0]  # found ignoring case, as MRQA's detected spans
    assert context[start:start + 9] == "the Seine"


def test_hotpotqa_splits_come_from_the_records_field(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (_hotpot("a", "Paris", split="train"),
                                                           _hotpot("b", "Lyon", split="dev"))))
    written = cv.convert("hotpotqa", path, tmp_path / "out")
    assert set(written) == {"train", "dev"} and written["dev"].parent.name == "hotpot_distractor_hf"
    assert json.loads(written["dev"].read_text())["type"] == "bridge"
    path.write_text(json.dumps({**_hotpot("c", "Paris"), "context": [["Paris", "not a list"]]}) + "\n")
    with pytest.raises(BadInput, match="line 1: context must be a list of \\[title, \\[sentences\\]\\]"):
        cv.convert("hotpotqa", path, tmp_path / "out2")


@pytest.mark.data
def test_real_hotpotqa_distractor_file(shared_data, tmp_path):
    from linkbert.finetune.convert_qa import hotpotqa_records
    from linkbert.finetune.qa import answer_in_context

    splits, dropped = hotpotqa_records(shared_data / "hotpotqa" / "hotpot_distractor_1450.jsonl")
    assert dropped == {"yes_no": 94}  # MRQA drops them too; every other answer is in its context
    assert {k: len(v) for k, v in splits.items()} == {"dev": 1265, "train": 91}
    records = splits["dev"] + splits["train"]
    assert all(answer_in_context(r, 0) for r in records)  # every span checked: the exact answer text
    assert sum(r["type"] == "comparison" for r in records) == 241
    assert all(r["context"].startswith("[PAR] [TLE] ") and r["context"].count("[PAR]") <= 10 for r in records)
