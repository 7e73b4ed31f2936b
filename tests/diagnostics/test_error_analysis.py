"""Error analysis: confusion counts on hand-made pairs, grouped corpus CERs, secondary variants, the contact
sheet, and `ocrbench errors` on an untrained tiny checkpoint."""

import json

import editdistance
import numpy as np
import pytest
import torch
from PIL import Image

from ocrbench.cli import main
from ocrbench.data.charset import Charset
from ocrbench.diagnostics.error_analysis import (
    COLOURS,
    aligned_columns,
    analyse,
    cer_by_group,
    cer_by_length,
    confusions,
    draw_contact_sheet,
    error_analysis,
    length_bucket,
    score_lines,
    secondary_cers,
    worst_lines,
)
from ocrbench.harness.checkpoint import model_meta
from ocrbench.harness.metrics import cer
from ocrbench.models import create_model

# (reference, hypothesis): one substitution o->i; one insertion r; one deletion l; k->s, e->i and an inserted g
PAIRS = [("dog", "dig"), ("cat", "cart"), ("hello", "helo"), ("kitten", "sitting")]


def test_confusion_counts_of_hand_made_pairs():
    lines = score_lines([r for r, _ in PAIRS], [h for _, h in PAIRS])
    c = confusions(lines)
    assert c.substitutions == {("o", "i"): 1, ("k", "s"): 1, ("e", "i"): 1}
    assert c.insertions == {"r": 1, "g": 1}
    assert c.deletions == {"l": 1}
    assert [x.edits for x in lines] == [editdistance.eval(r, h) for r, h in PAIRS] == [1, 1, 1, 3]


def test_the_report_is_corpus_level_and_matches_the_benchmark_cer():
    refs, hyps = [r for r, _ in PAIRS], [h for _, h in PAIRS]
    report = analyse(score_lines(refs, hyps))
    assert report["edits"] == 6 and report["chars"] == 17
    assert report["cer"] == pytest.approx(6 / 17) == pytest.approx(cer(hyps, refs))
    assert report["confusions"]["totals"] == {"substitutions": 3, "insertions": 2, "deletions": 1}
    assert report["confusions"]["substitutions"][0]["count"] == 1


def test_texts_are_nfc_normalised_before_alignment():
    decomposed = "cafe\u0301  au lait"  # e + combining acute, and a double space
    (line,) = score_lines([decomposed], ["café au lait"])
    assert line.edits == 0 and line.ref == "café au lait"


def test_aligned_columns_rebuild_both_texts():
    for ref, hyp in [*PAIRS, ("abc", ""), ("", "xy"), ("a b", "ab c")]:
        (line,) = score_lines([ref], [hyp])
        cols = aligned_columns(line)
        assert "".join(c[0] for c in cols) == ref and "".join(c[1] for c in cols) == hyp
        assert sum(1 for c in cols if c[2]) == line.edits


def test_cer_by_length_buckets():
    assert [length_bucket(n) for n in (0, 10, 11, 40, 41, 80, 81)] == \
        ["0-10", "0-10", "11-20", "31-40", "41-60", "61-80", "81+"]
    refs = ["short", "x" * 15, "y" * 15]
    hyps = ["shor", "x" * 15, "y" * 12]
    rows = cer_by_length(score_lines(refs, hyps))
    assert [(r["group"], r["lines"], r["edits"], r["chars"]) for r in rows] == [("0-10", 1, 1, 5), ("11-20", 2, 3, 30)]
    assert rows[1]["cer"] == pytest.approx(3 / 30)


def test_cer_by_writer_and_na_without_the_key():
    metas = [{"writer": "a"}, {"writer": "b"}, {"writer": "a"}]
    lines = score_lines(["abcd", "abcd", "ab"], ["abcd", "xbcd", "a"], metas)
    rows = cer_by_group(lines)
    assert [(r["group"], r["edits"], r["chars"]) for r in rows] == [("b", 1, 4), ("a", 1, 6)]  # worst first
    report = analyse(score_lines(["ab"], ["ab"], [{"id": "l1", "page": "p.jpg"}]))
    assert report["cer_by_group"]["groups"] is None
    assert report["cer_by_group"]["note"].startswith("n/a") and "id, page" in report["cer_by_group"]["note"]


def test_secondary_variants_ignore_case_and_punctuation():
    sec = secondary_cers(score_lines(["Hello, World"], ["hello world"]))
    assert sec["case_insensitive"] == pytest.approx(1 / 12)  # only the comma is left
    assert sec["no_punctuation"] == pytest.approx(2 / 11)  # "Hello World" vs "hello world": two cases
    assert sec["no_punctuation_reference_chars"] == 11


def test_worst_lines_by_edits_then_cer():
    lines = score_lines(["abcdefghij", "abc", "abcd", "ok"], ["xbcdefghiy", "xyc", "abcd", "ok"])
    assert [x.index for x in worst_lines(lines, k=3)] == [1, 0]  # 2 edits each: CER 2/3 before 2/10; no perfect lines


def test_contact_sheet_marks_the_differences(tmp_path):
    lines = score_lines(["dog", "cat"], ["dig", "cart"], [{"writer": "w1"}, {}])
    images = [np.zeros((32, 60), np.uint8), np.full((32, 3000), 255, np.uint8)]  # the second wider than the sheet
    path = draw_contact_sheet(lines, images, tmp_path / "sheet.png", title="test")
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    colours = {tuple(p) for p in pixels[::7]}
    assert COLOURS["sub"] in colours and COLOURS["ins"] in colours
    assert Image.open(path).width <= 1400 + 100


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return create_model("crnn_tiny", Charset(), input_height=32)


def test_error_analysis_writes_the_three_files_and_agrees_with_evaluate(tiny_model, rendered_lines, tmp_path):
    report = error_analysis(tiny_model, rendered_lines, tmp_path, batch_size=4, device="cpu", k=3)
    assert report["cer"] == pytest.approx(report["evaluation"]["cer"]) and report["lines"] == len(rendered_lines)
    assert json.loads((tmp_path / "errors.json").read_text())["edits"] == report["edits"]
    md = (tmp_path / "errors.md").read_text()
    assert "Secondary CER variants (diagnosis only" in md and "n/a: the lines carry no 'writer'" in md
    assert Image.open(tmp_path / "worst_lines.png").height > 3 * 48
    assert len(report["worst_lines"]) == 3


def test_errors_cli_on_a_checkpoint_with_its_run_config(tiny_model, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"meta": model_meta(tiny_model), "model": tiny_model.state_dict()}, run / "checkpoint.pt")
    (run / "config.yaml").write_text("data: {name: synth-lines, height: 32, test_size: 6, "
                                     "options: {max_chars: 6, writers: [timesi]}}\n")
    out = tmp_path / "out"
    code = main(["errors", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out), "--worst", "2",
                 "--quiet", "--json", "--device", "cpu"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["data_config"] == str(run / "config.yaml") and result["lines"] == 6
    assert [g["group"] for g in result["cer_by_group"]["groups"]] == ["timesi"]
    assert {p.name for p in out.iterdir()} == {"errors.json", "errors.md", "worst_lines.png"}


def test_errors_cli_refuses_a_negative_worst(tiny_model, tmp_path, capsys):
    torch.save({"meta": model_meta(tiny_model), "model": tiny_model.state_dict()}, tmp_path / "c.pt")
    assert main(["errors", "--checkpoint", str(tmp_path / "c.pt"), "--worst", "-1"]) == 2
    assert "--worst must be >= 0" in capsys.readouterr().err
