"""IAM loader on a generated miniature IAM folder in the real layout and XML schema; the split lists of the
downloaded ``iam-splits`` (from the shared mirror: skipped without it) and of IAM's own task files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import pytest
from conftest import render_line
from PIL import Image

from ocrbench.cli import main
from ocrbench.config import DataConfig
from ocrbench.datasets import create_dataset, dataset_info, iam, list_datasets, run_check
from ocrbench.errors import DataError, NotDownloaded, UserError

# form id -> writer, then (status, xml text, lines.txt tokens) per line. Texts as IAM writes them: the XML
# has natural spacing and entities (&quot; &amp;), lines.txt has word tokens joined by '|'.
FORMS = {
    "a01-000u": ("000", [("ok", 'A MOVE to stop Mr. Gaitskell', "A|MOVE|to|stop|Mr.|Gaitskell"),
                         ("err", 'of Labour "M Ps" tomorrow.', 'of|Labour|"|M|Ps|"|tomorrow|.')]),
    "a01-003u": ("000", [("ok", "Sir Roy & his men", "Sir|Roy|&|his|men"),
                         ("ok", "rain (today)", "rain|(|today|)")]),
    "c04-110": ("150", [("ok", "it's me, 42 ships!", "it's|me|,|42|ships|!")]),
}
SPLITS = {"train": ["a01-000u-00", "a01-000u-01"], "val": ["a01-003u-00", "a01-003u-01"], "test": ["c04-110-00"]}
LINE_H, PITCH, LEFT = 40, 70, 50


def _line_xml(line_id: str, status: str, text: str, x: int, y: int, w: int) -> str:
    words, out, cx = text.split(" "), [], x
    unit = w / max(1, len(text))
    for k, word in enumerate(words):
        ww = max(4, round(len(word) * unit))
        out.append(f'<word id="{line_id}-{k:02d}" tag="NN" text={quoteattr(word)}>\n'
                   f'<cmp x="{cx}" y="{y}" width="{ww}" height="{LINE_H}"/>\n</word>')
        cx += ww + round(unit)
    return (f'<line ass="-187" asx="0" asy="739" character-width="999" dss="-187" dsx="0" dsy="831" fd0="12129" '
            f'fd1="2994" fd2="-339" filter-width="5" id="{line_id}" lbs="-108" lbx="0" lby="810" '
            f'segmentation="{status}" slant="90000" stroke-width="7333" threshold="154" text={quoteattr(text)} '
            f'ubs="-347" ubx="0" uby="769">\n' + "\n".join(out) + "\n</line>")


def make_iam(root: Path, forms_dir: str = "formsA-D") -> Path:
    """A miniature IAM folder: lines/<a01>/<form>/<line>.png, xml/<form>.xml, ascii/lines.txt, forms*/<form>.png."""
    (root / "xml").mkdir(parents=True)
    (root / "ascii").mkdir()
    (root / forms_dir).mkdir()
    ascii_rows = ["#--- lines.txt ---#", "#", "# format: a01-000u-00 ok 154 19 408 746 1663 91 A|MOVE|to|stop", "#"]
    for form_id, (writer, lines) in FORMS.items():
        width, height = 900, 200 + PITCH * len(lines)
        form = np.full((height, width), 255, np.uint8)
        xml_lines = []
        for n, (status, text, tokens) in enumerate(lines):
            line_id = f"{form_id}-{n:02d}"
            scan = 255 - render_line(text, LINE_H)  # IAM scans: dark ink on white
            x, y = LEFT, 150 + PITCH * n
            form[y:y + LINE_H, x:x + scan.shape[1]] = scan
            folder = root / "lines" / form_id[:3] / form_id
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(scan).save(folder / f"{line_id}.png")
            xml_lines.append(_line_xml(line_id, status, text, x, y, scan.shape[1]))
            ascii_rows.append(f"{line_id} {status} 154 7 {x} {y} {scan.shape[1]} {LINE_H} {tokens}")
        Image.fromarray(form).save(root / forms_dir / f"{form_id}.png")
        printed = "".join(f"<machine-print-line text={quoteattr(t)}/>\n" for _, t, _ in lines)
        (root / "xml" / f"{form_id}.xml").write_text(
            '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
            f'<form created="2002-01-14" height="{height}" id="{form_id}" last-modified="2002-07-17" skew="287" '
            f'status="final" version="3.0_beta" width="{width}" writer-id="{writer}">\n'
            f"<machine-printed-part>\n{printed}</machine-printed-part>\n"
            "<handwritten-part>\n" + "\n".join(xml_lines) + "\n</handwritten-part>\n</form>\n",
            encoding="iso-8859-1")
    (root / "ascii" / "lines.txt").write_text("\n".join(ascii_rows) + "\n")
    splits = root / "splits"
    splits.mkdir()
    for split, ids in SPLITS.items():
        (splits / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


@pytest.fixture
def iam_root(tmp_path) -> Path:
    return make_iam(tmp_path / "IAM")


def _cfg(root: Path, tmp_path: Path, **options) -> DataConfig:
    return DataConfig(root=str(root), height=32, cache_dir=str(tmp_path / "cache"),
                      options={"splits": str(root / "splits"), **options})


def _texts(ds) -> list[str]:
    return [ds[i].text for i in range(len(ds))]


# ---- split lists ------------------------------------------------------------------------------------------
def test_downloaded_split_lists_have_the_published_sizes(shared_download):
    shared_download("iam-splits")
    for convention, sizes in iam.SPLIT_SIZES.items():
        for split, n in sizes.items():
            ids = iam.split_ids(convention, split)
            assert len(ids) == len(set(ids)) == n, (convention, split)
    val = iam.split_ids("large", "val")
    assert len({i.rsplit("-", 1)[0] for i in val[:900]}) == 105 and len(set(val[:900]) & set(val[900:])) == 0
    assert set(iam.split_ids("large", "train")) < set(iam.split_ids("aachen", "train"))  # 321 lines fewer


@pytest.mark.parametrize("convention", ["aachen", "large"])
def test_split_lists_are_line_and_form_disjoint(convention, shared_download):
    shared_download("iam-splits")
    ids = {s: set(iam.split_ids(convention, s)) for s in ("train", "val", "test")}
    forms = {s: {i.rsplit("-", 1)[0] for i in v} for s, v in ids.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not ids[a] & ids[b] and not forms[a] & forms[b]


@pytest.mark.parametrize("convention", ["aachen", "large"])
def test_a_missing_list_names_the_download_command(convention, iam_root, tmp_path):
    cfg = replace(_cfg(iam_root, tmp_path), options={"splits": convention})
    with pytest.raises(NotDownloaded, match="ocrbench data download iam-splits"):
        create_dataset("iam", "test", cfg)


def test_large_reads_iams_own_task_files_when_the_folder_has_them(iam_root, tmp_path):
    task = iam_root / "largeWriterIndependentTextLineRecognitionTask"
    task.mkdir()
    names = {"train": ["trainset.txt"], "val": ["validationset1.txt", "validationset2.txt"], "test": ["testset.txt"]}
    for split, files in names.items():
        for i, name in enumerate(files):
            (task / name).write_text("".join(f"{line}\n" for line in SPLITS[split][i::len(files)]))
    cfg = replace(_cfg(iam_root, tmp_path), options={"splits": "large"})  # nothing downloaded: not needed
    assert [ds.records[i]["id"] for ds in [create_dataset("iam", "val", cfg)] for i in range(2)] == SPLITS["val"]
    assert len(create_dataset("iam", "train", cfg)) == 2 and len(create_dataset("iam", "test", cfg)) == 1


# ---- the loader -------------------------------------------------------------------------------------------
def test_registered_with_a_dataset_card():
    assert "iam" in list_datasets()
    info = dataset_info("iam")
    assert info.needs_root and "6,482" in info.sizes and "Marti" in info.citation and info.charset


def test_lines_from_xml_keep_real_spacing(iam_root, tmp_path):
    ds = create_dataset("iam", "train", _cfg(iam_root, tmp_path))
    assert _texts(ds) == ["A MOVE to stop Mr. Gaitskell", 'of Labour "M Ps" tomorrow.']
    sample = ds[0]
    assert sample.image.dtype == np.uint8 and sample.image.shape[0] == 32
    assert np.median(sample.image) < 40 and sample.image.max() > 200  # inverted: ink bright on dark
    assert sample.meta == {"id": "a01-000u-00", "writer": "000", "segmentation": "ok"}
    assert ds.charset.chars == iam.Charset().chars


def test_lines_from_ascii_join_word_tokens(iam_root, tmp_path):
    ds = create_dataset("iam", "train", _cfg(iam_root, tmp_path, text_source="ascii"))
    assert _texts(ds) == ["A MOVE to stop Mr. Gaitskell", 'of Labour " M Ps " tomorrow .']


def test_ascii_is_used_when_there_is_no_xml(iam_root, tmp_path):
    for p in (iam_root / "xml").iterdir():
        p.unlink()
    ds = create_dataset("iam", "test", _cfg(iam_root, tmp_path))
    assert ds.source == "ascii" and _texts(ds) == ["it's me , 42 ships !"]


def test_err_lines_kept_by_default_and_dropped_on_request(iam_root, tmp_path):
    kept = create_dataset("iam", "train", _cfg(iam_root, tmp_path))
    dropped = create_dataset("iam", "train", _cfg(iam_root, tmp_path, err_lines="drop"))
    assert len(kept) == 2 and len(dropped) == 1
    assert dropped.stats["dropped_err_lines"] == 1 and kept[1].meta["segmentation"] == "err"


def test_paragraphs_crop_the_form_around_its_lines(iam_root, tmp_path):
    ds = create_dataset("iam", "val", _cfg(iam_root, tmp_path, level="paragraphs"))
    assert len(ds) == 1
    assert ds[0].text == "Sir Roy & his men rain (today)"
    assert ds[0].image.shape[0] == 32 and ds[0].image.shape[1] > 32  # a wide crop, not the whole form


def test_cache_is_reused_without_reading_images(iam_root, tmp_path, monkeypatch):
    first = create_dataset("iam", "val", _cfg(iam_root, tmp_path))
    images = [first[i].image.tobytes() for i in range(len(first))]
    monkeypatch.setattr(iam.IamLines, "render_all", lambda self: pytest.fail("cache not used"))
    again = create_dataset("iam", "val", _cfg(iam_root, tmp_path))
    assert [again[i].image.tobytes() for i in range(len(again))] == images


def test_missing_line_image_fails_naming_it_or_is_skipped_and_counted(iam_root, tmp_path):
    gone = iam_root / "lines" / "a01" / "a01-003u" / "a01-003u-01.png"
    gone.unlink()
    with pytest.raises(DataError, match="a01-003u-01.png"):
        len(create_dataset("iam", "val", _cfg(iam_root, tmp_path)))
    ds = create_dataset("iam", "val", replace(_cfg(iam_root, tmp_path), skip_bad=True))
    assert len(ds) == 1 and ds.integrity["bad_files"] == 1 and "a01-003u-01.png" in ds.integrity["bad_examples"][0]


def test_corrupt_line_image_is_named(iam_root, tmp_path):
    bad = iam_root / "lines" / "c04" / "c04-110" / "c04-110-00.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated PNG
    with pytest.raises(DataError, match="c04-110-00.png"):
        create_dataset("iam", "test", _cfg(iam_root, tmp_path))[0]


def test_standard_split_on_an_incomplete_folder_says_so(iam_root, tmp_path, shared_download):
    shared_download("iam-splits")  # into the default cache, where a config without cache_dir looks
    cfg = replace(_cfg(iam_root, tmp_path), options={"splits": "aachen"}, cache_dir=None)
    with pytest.raises(DataError, match="incomplete"):
        create_dataset("iam", "test", cfg)


def test_missing_root_explains_how_to_get_iam(tmp_path, monkeypatch):
    monkeypatch.delenv("OCRBENCH_IAM", raising=False)
    with pytest.raises(DataError, match="fki"):
        create_dataset("iam", "train", DataConfig(cache_dir=str(tmp_path)))


def test_text_outside_the_charset_names_the_line(iam_root, tmp_path):
    xml = iam_root / "xml" / "c04-110.xml"
    xml.write_text(xml.read_text(encoding="iso-8859-1").replace("ships!", "ships\u00a7"), encoding="iso-8859-1")
    with pytest.raises(DataError, match="c04-110-00.*oov=replace"):
        create_dataset("iam", "test", _cfg(iam_root, tmp_path))
    ds = create_dataset("iam", "test", replace(_cfg(iam_root, tmp_path), oov="replace"))
    assert ds[0].text == "it's me, 42 ships#" and ds.charset.stats.total == 1


def test_bad_option_is_a_user_error(iam_root, tmp_path):
    with pytest.raises(UserError, match="level"):
        create_dataset("iam", "train", _cfg(iam_root, tmp_path, level="words"))


def test_forms_as_pages(iam_root):
    pages = iam.iam_pages(iam_root, "val", splits=str(iam_root / "splits"))
    assert [p.image_path.name for p in pages] == ["a01-003u.png"]
    page = pages[0]
    assert (page.width, page.height) == Image.open(page.image_path).size and len(page.lines) == 2
    x0, y0, x1, y1 = page.lines[1].bbox
    assert (x0, y0) == (LEFT, 150 + PITCH) and y1 - y0 == LINE_H and page.lines[1].line_type == "Handwritten"


# ---- ocrbench data check iam ------------------------------------------------------------------------------
def test_check_counts_lines_and_reports_bad_files(iam_root):
    (iam_root / "lines" / "c04" / "c04-110" / "c04-110-00.png").write_bytes(b"")
    report = run_check("iam", iam_root, splits=str(iam_root / "splits"))
    assert report.ok and len(report.bad_files) == 1 and "empty" in report.bad_files[0].reason
    assert report.counts["line images"] == 5 and report.counts["err lines"] == 1
    assert report.counts[f"train lines ({iam_root / 'splits'})"].startswith("2 of 2")
    assert not report.as_dict()["ok"] and report.as_dict(skip_bad=True)["ok"]


def test_check_on_an_empty_folder_says_what_is_missing_and_where_to_get_iam(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["data", "check", "iam", "--root", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert "no line images" in out and "lines/a01/a01-000u/a01-000u-00.png" in out
    assert "fki.tic.heia-fr.ch" in out and "register" in out


def test_iam_lines_config_runs_on_the_folder(iam_root, tmp_path):
    from ocrbench.config import load_suite, resolve_config

    cfg = load_suite(resolve_config("iam_lines"), {"data.root": str(iam_root), "data.cache_dir": str(tmp_path),
                                                    "data.options.splits": str(iam_root / "splits")})
    assert cfg.data.name == "iam" and cfg.data.options["err_lines"] == "keep"
    ds = create_dataset(cfg.data.name, cfg.eval_split, cfg.data)
    assert len(ds) == 1 and ds[0].image.shape[0] == cfg.data.height == 64
