"""ocrbench data preview: a suite's data, and real collections beside it on one sheet."""

from __future__ import annotations

import pytest
from PIL import Image

from ocrbench.cli import main


def test_preview_of_a_suites_data(tmp_path, capsys):
    out = tmp_path / "quick.png"
    assert main(["data", "preview", "--suite", "ci", "-n", "3", "--out", str(out)]) == 0
    with Image.open(out) as sheet:
        assert sheet.height > 3 * 32


def test_preview_beside_a_real_collection_captions_each_line(tmp_path, shared_download, monkeypatch):
    import ocrbench.data.preview as preview

    shared_download("stanford-memorials")
    drawn = []
    real_sheet = preview.write_contact_sheet
    monkeypatch.setattr(preview, "write_contact_sheet", lambda lines, path, n: drawn.extend(lines) or real_sheet(
        lines, path, n=n))
    out = tmp_path / "beside.png"
    # the default split is train, which stanford-memorials (evaluation only) lacks: its test lines are drawn
    assert main(["data", "preview", "--suite", "ci", "--beside", "stanford-memorials", "-n", "2",
                 "--out", str(out)]) == 0
    assert [s.text.split(":")[0] for s in drawn] == ["synth-lines"] * 2 + ["stanford-memorials"] * 2
    assert {s.image.shape[0] for s in drawn} == {32}  # the suite's height for every line
    assert out.is_file()


@pytest.mark.parametrize("argv, message", [
    (["data", "preview"], "name a dataset"),
    (["data", "preview", "synth-lines", "--suite", "ci"], "not both"),
    (["data", "preview", "--suite", "ci", "--beside", "synth-pages"], "page dataset"),
])
def test_preview_mistakes_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
