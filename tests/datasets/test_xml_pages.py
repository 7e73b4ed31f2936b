"""ALTO on two real pages (from the shared copy of stanford-memorials: skipped without it); PAGE 2013 and ALTO
mm10 on generated files; line-crop datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import render_line
from PIL import Image

from ocrbench.config import DataConfig
from ocrbench.datasets import create_dataset
from ocrbench.datasets import xml_pages as xp
from ocrbench.errors import DataError, UserError

ORIGINAL_SIZE = (2133, 3356)  # page i083 as published: the XML's page size; the shared JPG is a half-size copy
PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15"


def _cfg(tmp_path: Path, **kw) -> DataConfig:
    return DataConfig(height=32, cache_dir=str(tmp_path / "cache"), **kw)


# ---- the real ALTO pages ----------------------------------------------------------------------------------
def test_read_alto_real_page(memorial_pages):
    page = xp.read_alto(memorial_pages / "SC0033B_s4_b01_f14_i083.xml")
    assert page.image_path == memorial_pages / "SC0033B_s4_b01_f14_i083.jpg"
    assert (page.width, page.height) == Image.open(page.image_path).size  # coordinates follow the image at hand
    sx, sy = page.width / ORIGINAL_SIZE[0], page.height / ORIGINAL_SIZE[1]
    assert len(page.lines) == 15
    first = page.lines[0]
    assert first.id == "eSc_line_fd65645c" and first.text == "President McClish"
    assert first.bbox == pytest.approx((296 * sx, 251 * sy, (296 + 1571) * sx, (251 + 190) * sy))
    assert first.line_type == "Handwritten" and first.label == "DefaultLine:Handwritten"
    assert [c for point in first.baseline for c in point] == pytest.approx([311 * sx, 424 * sy, 1869 * sx, 403 * sy])
    xs, ys = zip(*first.polygon)
    assert len(first.polygon) > 10 and min(xs) >= first.bbox[0] and max(ys) <= first.bbox[3]
    assert page.lines[13].text == "between 1 & 2 PM."  # the XML entity is decoded


def test_read_page_folder_pairs_images_and_reads_line_types(memorial_pages):
    pages = xp.read_page_folder(memorial_pages)
    assert [p.image_path.name for p in pages] == ["SC0033B_s4_b01_f14_i083.jpg", "SC0033B_s4_b01_f14_i084.jpg"]
    types = [line.line_type for p in pages for line in p.lines]
    assert types.count("Handwritten") == 26 and types.count("Print") == 2
    gray = xp.load_page_image(pages[1])
    assert gray.dtype == np.uint8 and gray.shape == (pages[1].height, pages[1].width)
    assert gray.mean() > 128  # as scanned: light paper, dark ink


def test_alto_dataset_serves_handwritten_lines_as_the_test_split(tmp_path, memorial_pages):
    ds = create_dataset(f"alto:{memorial_pages}", "test", _cfg(tmp_path))
    assert len(ds) == 26 and ds.stats["filtered_type_Print"] == 2
    sample = ds[0]
    assert sample.text == "President McClish" and sample.meta["line_type"] == "Handwritten"
    assert sample.image.dtype == np.uint8 and sample.image.shape[0] == 32
    assert np.median(sample.image) < 30 and sample.image.max() > 200  # inverted, paper near 0
    everything = create_dataset(f"alto:{memorial_pages}", "test", _cfg(tmp_path, options={"line_types": "all"}))
    assert len(everything) == 28
    with pytest.raises(DataError, match="only split 'test'"):
        create_dataset(f"alto:{memorial_pages}", "train", _cfg(tmp_path))


def test_polygon_mask_blanks_outside_the_line(tmp_path, memorial_pages):
    plain = create_dataset(f"alto:{memorial_pages}", "test", _cfg(tmp_path))
    masked = create_dataset(f"alto:{memorial_pages}", "test", _cfg(tmp_path, options={"polygon_mask": True}))
    assert masked[3].image.shape == plain[3].image.shape
    assert masked[3].image.sum() < plain[3].image.sum()


# ---- generated files --------------------------------------------------------------------------------------
LINES = [  # id, text as transcribed, type, expected text under the default conventions
    ("l1", "the cat", "handwritten", "the cat"),
    ("l2", "M^r ⟦old⟧ dog", "handwritten", "Mr dog"),
    ("l3", "Quick fox!", "printed", "Quick fox!"),
]


def _page_scan(tmp_path: Path, name: str = "page1.png") -> tuple[Path, list[tuple[int, int, int, int]]]:
    page = np.full((300, 400), 250, np.uint8)
    boxes = []
    for k, (_, text, _, _) in enumerate(LINES):
        line = 255 - render_line(text.replace("^", "").replace("⟦", "").replace("⟧", ""), 32)
        x, y = 20, 30 + 80 * k
        page[y:y + 32, x:x + line.shape[1]] = np.minimum(line, 250)
        boxes.append((x, y, x + line.shape[1], y + 32))
    path = tmp_path / name
    Image.fromarray(page).convert("RGB").save(path)
    return path, boxes


def write_pagexml(tmp_path: Path, name: str = "page1") -> Path:
    image, boxes = _page_scan(tmp_path, f"{name}.png")
    regions = []
    for (line_id, text, kind, _), (x0, y0, x1, y1) in zip(LINES, boxes):
        pts = f"{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"
        regions.append(
            f'<TextRegion id="r_{line_id}" type="paragraph"><Coords points="{pts}"/>'
            f'<TextLine id="{line_id}" custom="readingOrder {{index:0;}} structure {{type:{kind};}}">'
            f'<Coords points="{pts}"/><Baseline points="{x0},{y1 - 6} {x1},{y1 - 6}"/>'
            f'<TextEquiv index="1"><Unicode>wrong</Unicode></TextEquiv>'
            f'<TextEquiv index="0"><Unicode>{text}</Unicode></TextEquiv></TextLine></TextRegion>')
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<PcGts xmlns="{PAGE_NS}"><Metadata><Creator>test</Creator>'
           f'<Created>2024-01-01T00:00:00</Created><LastChange>2024-01-01T00:00:00</LastChange></Metadata>'
           f'<Page imageFilename="{image.name}" imageWidth="400" imageHeight="300">{"".join(regions)}</Page></PcGts>')
    path = tmp_path / f"{name}.xml"
    path.write_text(xml, encoding="utf-8")
    return path


def test_read_pagexml_generated_file(tmp_path):
    page = xp.read_pagexml(write_pagexml(tmp_path))
    assert (page.width, page.height, page.image_path.name) == (400, 300, "page1.png")
    assert [line.id for line in page.lines] == ["l1", "l2", "l3"]
    assert [line.line_type for line in page.lines] == ["handwritten", "handwritten", "printed"]
    assert page.lines[1].text == "M^r ⟦old⟧ dog"  # TextEquiv index 0 wins
    assert page.lines[0].bbox[0] == 20 and page.lines[0].baseline[0] == (20, 56)
    assert xp.read_page(tmp_path / "page1.xml").lines[0].text == "the cat"


def test_pagexml_dataset_filters_types_and_applies_conventions(tmp_path):
    write_pagexml(tmp_path)
    ds = create_dataset(f"pagexml:{tmp_path}", "test", _cfg(tmp_path))
    assert [ds[i].text for i in range(len(ds))] == [e for _, _, kind, e in LINES if kind == "handwritten"]
    kept = create_dataset(f"pagexml:{tmp_path}", "test", _cfg(
        tmp_path, oov="replace", options={"line_types": "all", "superscript": "keep", "strikethrough": "map"}))
    assert [kept[i].text for i in range(len(kept))] == ["the cat", "M#r # dog", "Quick fox!"]


def test_split_files_select_pages(tmp_path):
    write_pagexml(tmp_path, "page1")
    write_pagexml(tmp_path, "page2")
    (tmp_path / "train.txt").write_text("page1\n")
    (tmp_path / "val.txt").write_text("")
    (tmp_path / "test.txt").write_text("page2\n")
    train = create_dataset(f"pagexml:{tmp_path}", "train", _cfg(tmp_path))
    test = create_dataset(f"pagexml:{tmp_path}", "test", _cfg(tmp_path))
    assert {train[i].meta["page"] for i in range(len(train))} == {"page1.png"}
    assert {test[i].meta["page"] for i in range(len(test))} == {"page2.png"}


def test_unreadable_page_image_is_named_or_skipped_and_counted(tmp_path):
    write_pagexml(tmp_path)
    (tmp_path / "page1.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="page1.png"):
        len(create_dataset(f"pagexml:{tmp_path}", "test", _cfg(tmp_path)))
    ds = create_dataset(f"pagexml:{tmp_path}", "test", _cfg(tmp_path, skip_bad=True))
    assert len(ds) == 0 and ds.integrity["bad_files"] == 2  # both selected lines of the page
    with pytest.raises(DataError, match="page1.png"):
        xp.load_page_image(xp.read_pagexml(tmp_path / "page1.xml"))


def test_alto_mm10_coordinates_are_scaled_to_pixels(tmp_path):
    image, _ = _page_scan(tmp_path, "scan.png")  # 400 x 300 px; the page is 200 x 150 mm10 units
    alto = ('<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Description><MeasurementUnit>mm10'
            '</MeasurementUnit><sourceImageInformation><fileName>scan.png</fileName></sourceImageInformation>'
            '</Description><Tags><OtherTag ID="T1" LABEL="DefaultLine:Handwritten"/></Tags><Layout>'
            '<Page WIDTH="200" HEIGHT="150" PHYSICAL_IMG_NR="1" ID="p"><PrintSpace><TextBlock ID="b">'
            '<TextLine ID="t1" TAGREFS="T1" HPOS="10" VPOS="15" WIDTH="50" HEIGHT="16" BASELINE="28">'
            '<String CONTENT="the"/><SP/><String CONTENT="cat"/><HYP CONTENT="-"/></TextLine>'
            '</TextBlock></PrintSpace></Page></Layout></alto>')
    (tmp_path / "scan.xml").write_text(alto)
    page = xp.read_alto(tmp_path / "scan.xml")
    line = page.lines[0]
    assert (page.width, page.height) == (400, 300)
    assert line.bbox == (20, 30, 120, 62) and line.baseline == [(20, 56), (120, 56)]
    assert line.text == "the cat-" and line.line_type == "Handwritten"
    assert line.polygon == [(20, 30), (120, 30), (120, 62), (20, 62)]


def test_unsupported_unit_and_bad_xml_are_data_errors(tmp_path):
    (tmp_path / "a.xml").write_text('<alto><Description><MeasurementUnit>furlong</MeasurementUnit>'
                                    '</Description><Layout><Page WIDTH="1" HEIGHT="1"/></Layout></alto>')
    with pytest.raises(DataError, match="furlong"):
        xp.read_alto(tmp_path / "a.xml")
    (tmp_path / "b.xml").write_text("<alto><unclosed>")
    with pytest.raises(DataError, match="b.xml"):
        xp.read_alto(tmp_path / "b.xml")


def test_folder_without_xml_and_without_root(tmp_path):
    with pytest.raises(DataError, match="no PAGE XML"):
        create_dataset(f"pagexml:{tmp_path}", "test", _cfg(tmp_path))
    with pytest.raises(DataError, match="alto:PATH"):
        create_dataset("alto", "test", _cfg(tmp_path))
    with pytest.raises(UserError, match="line_type"):
        create_dataset(f"pagexml:{tmp_path}", "test", _cfg(tmp_path, options={"line_type": "all"}))


@pytest.mark.parametrize(("text", "sup", "strike", "expected"), [
    ("M^r Smith", "strip", "drop", "Mr Smith"),
    ("M^r Smith", "drop", "drop", "M Smith"),
    ("M^r Smith", "keep", "drop", "M^r Smith"),
    ("a ⟦bad⟧ word", "strip", "drop", "a  word"),
    ("a ⟦bad⟧ word", "strip", "strip", "a bad word"),
    ("a ⟦bad⟧ word", "strip", "map", "a # word"),
    ("a ⟦bad⟧ word", "strip", "keep", "a ⟦bad⟧ word"),
])
def test_conventions(text, sup, strike, expected):
    assert xp.apply_conventions(text, sup, strike) == expected


def test_empty_box_is_reported(tmp_path):
    line = xp.TextLine("x", [], (5, 5, 5, 5), None, "a", None)
    with pytest.raises(ValueError, match="empty box"):
        xp.crop_line(np.zeros((10, 10), np.uint8), line)


def test_xml_made_on_a_rescaled_scan_is_mapped_to_the_image(tmp_path):
    xml = write_pagexml(tmp_path)
    xml.write_text(xml.read_text().replace('imageWidth="400" imageHeight="300"', 'imageWidth="800" imageHeight="600"'))
    page = xp.read_pagexml(xml)
    assert (page.width, page.height) == (400, 300)
    assert page.lines[0].bbox[0] == 10 and page.lines[0].baseline[0] == (10, 28)


def test_check_fails_where_loading_fails_and_names_characters_outside_the_charset(faulty_alto, shared_real,
                                                                                   tmp_path_factory):
    """`data check` crops every line as loading does: what eval rejects, the check reports."""
    import shutil

    from conftest import MEMORIAL_PAGES

    from ocrbench.datasets import run_check

    clean = tmp_path_factory.mktemp("clean")
    for name in (f"{stem}{suffix}" for stem in MEMORIAL_PAGES for suffix in (".xml", ".jpg")):
        shutil.copyfile(shared_real / "stanford-memorials" / name, clean / name)

    report = run_check(f"alto:{faulty_alto}", None).as_dict()
    assert not report["ok"] and report["bad_files"] == 1 and "empty box" in report["bad_examples"][0]
    assert any("'€' (U+20AC) x1" in n and "'✓' (U+2713) x1" in n for n in report["notes"])
    assert run_check(f"alto:{faulty_alto}", None).as_dict(skip_bad=True)["ok"]
    assert run_check(f"alto:{clean}", None).as_dict()["ok"]


def test_charset_all_keeps_every_character_as_written(tmp_path, faulty_alto):
    cfg = DataConfig(height=32, skip_bad=True, cache_dir=str(tmp_path), options={"charset": "all"})
    ds = create_dataset(f"alto:{faulty_alto}", "test", cfg)
    assert {"€", "✓"} <= set(ds.charset.chars) and not ds.charset.stats.replaced
    assert any("€" in ds[i].text for i in range(len(ds)))


def test_charset_train_needs_a_train_split(tmp_path, memorial_pages):
    cfg = DataConfig(height=32, cache_dir=str(tmp_path), options={"charset": "train"})
    with pytest.raises(DataError, match="has no split files.*add train.txt"):
        create_dataset(f"alto:{memorial_pages}", "test", cfg)
