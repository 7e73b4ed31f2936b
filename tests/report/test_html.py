"""The leaderboard web page (ocrbench/report/html.py) without a browser: the same cells as the Markdown table, a
record page per row, filters, the command line. tests/report/test_html_browser.py drives it in Chromium."""

import re
from html import unescape

import pytest

from ocrbench.cli import main
from ocrbench.errors import UserError
from ocrbench.records import append_record
from ocrbench.report.html import family, reproductions, site_dir, write_site
from ocrbench.report.leaderboard import SECTION, folder_report, table_cells
from ocrbench.report.svg import Point, nice_ticks, scatter


def record(model, cer, seed=0, status="ok", **kw):
    """A run record with what the page shows (tests/report/test_leaderboard.py has the same kind)."""
    return {"suite": "s", "model": model, "dataset": "synth-lines", "split": "test", "decoder": "greedy", "cer": cer,
            "wer": cer * 2, "params": 1_000_000 + len(model), "seed": seed, "status": status, "steps": 10,
            "config_id": f"id-{model}", "config_hash": f"h-{model}-{seed}", "train_lines_per_s": 10.0 + seed,
            "device_name": "cpu", "train_dataset": "synth-lines", "torch": "2.x", "git": "abc", **kw}


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    curve = {"train_curve": [[10, 3.0, 0.001], [20, 2.0, 0.001]], "val_curve": [[10, 1.0, 0.9], [20, 2.0, 0.5]]}
    for seed, cer in enumerate((0.30, 0.20, 0.25)):
        append_record(folder / "runs.jsonl", record("crnn_small", cer, seed=seed, **curve))
    for seed, cer in enumerate((0.10, 0.11)):
        append_record(folder / "runs.jsonl", record("line_cnn_small", cer, seed=seed, decoder="beam", **curve))
    append_record(folder / "runs.jsonl", record("crnn_small", 0.8, dataset="stanford-memorials"))
    return folder


def cells_of(html: str, table_index: int = 0) -> list[list[str]]:
    table = re.findall(r"<table class='sortable leaderboard'>(.*?)</table>", html, re.S)[table_index]
    return [[unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr id=.*?</tr>", table, re.S)]


def test_the_page_shows_the_markdown_tables_cells_and_links_each_row_to_its_record(results, tmp_path):
    report = folder_report(results)
    written = write_site([report], tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    expected = table_cells(next(iter(report.table.groupby(SECTION, sort=False)))[1])
    rows = cells_of(html)
    assert [r[:-1] for r in rows] == [list(row) for row in zip(*expected.values())]  # the last cell: the link
    assert [r[1] for r in rows] == ["line_cnn_small", "crnn_small"]  # ranked as the Markdown ranks them
    assert "CER stanford-memorials" in expected and "0.800" in rows[1][expected_index(expected, "CER stanford")]
    for link in re.findall(r"href='(records/[^']+)'", html):
        page = (tmp_path / "site" / link).read_text()
        assert "Training curve" in page and "<polyline" in page and "Environment stamp" in page
    crnn = (tmp_path / "site" / re.search(r"href='(records/crnn_small-[^']+)'", html).group(1)).read_text()
    assert "h-crnn_small-2" in crnn and "stanford-memorials" in crnn  # every seed's hash; the other set's record
    assert (tmp_path / "site" / "assets" / "leaderboard.js").is_file() and written["html"].endswith("index.html")
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html  # offline


def expected_index(cells: dict, prefix: str) -> int:
    return next(i for i, h in enumerate(cells) if h.startswith(prefix))


def test_rows_carry_family_decoder_and_device_for_the_filters(results, tmp_path):
    write_site([folder_report(results)], tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    assert 'data-family="crnn" data-decoder="greedy" data-device="cpu"' in html
    assert '<option value="line_cnn">' in html and '<option value="beam">' in html
    assert family("attention_lm_small") == "attention_lm" and family("yolo_lines") == "yolo_lines"


def test_each_point_of_the_chart_names_its_row(results, tmp_path):
    write_site([folder_report(results)], tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    rows = set(re.findall(r"<tr id='(row\d+)'", html))
    points = re.findall(r'<g class="pt c\d" data-row="(row\d+)">', html)
    # params and train lines/s for both rows; the other set's panel only for the row evaluated there
    assert rows and set(points) == rows and len(points) == 2 * 2 + 1
    assert "<title>crnn_small (greedy): CER 0.2500" in html


def test_report_html_writes_the_site_and_a_file_in_the_way_is_one_line(results, tmp_path, capsys):
    assert main(["report", "--results", str(results), "--html", "--no-plot"]) == 0
    assert (results / "leaderboard" / "index.html").is_file() and (results / "leaderboard.md").is_file()
    (tmp_path / "file").write_text("x")
    assert main(["report", "--results", str(results), "--html", str(tmp_path / "file")]) == 2
    assert "a file is in the way" in capsys.readouterr().err
    assert main(["report", "--results", str(results), "--compare", str(results), "--html"]) == 2  # one or the other
    with pytest.raises(UserError, match="a file is in the way"):
        site_dir(tmp_path / "file")


def test_the_reproduction_table_is_shown_unless_the_folder_is_its_own_reference(results, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # results/<suite> is the reference; the fixture's suite is "s"
    local = tmp_path / "local"
    append_record(local / "runs.jsonl", record("crnn_small", 0.9))
    (tmp_path / "results").rename(tmp_path / "results-s")
    (tmp_path / "results").mkdir()
    (tmp_path / "results-s").rename(tmp_path / "results" / "s")
    reports = [folder_report(local), folder_report("results/s")]
    comparisons = reproductions(reports)
    assert len(comparisons) == 1 and "against the reference results/s" in comparisons[0].title
    assert comparisons[0].delta.set_index("model").loc["crnn_small", "verdict"] == "worse"
    write_site(reports, tmp_path / "site", comparisons=comparisons)
    assert "worse (outside by" in (tmp_path / "site" / "index.html").read_text()


def test_nice_ticks_and_a_log_axis_across_decades():
    assert nice_ticks(0.03, 0.87) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    chart = scatter([Point(0.1, 0.5, "a"), Point(10.0, 0.2, "b", yerr=0.05)], "x", "y")
    assert ">0.1</text>" in chart and ">10</text>" in chart and chart.count("<circle") == 2
    assert scatter([Point(float("nan"), 0.1, "nan")], "x", "y") == ""


def test_an_empty_results_folder_still_makes_a_page(tmp_path):
    folder = tmp_path / "r"
    append_record(folder / "runs.jsonl", record("a", 0.1, status="failed", error="boom"))
    write_site([folder_report(folder)], tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    assert "Failed runs" in html and "boom" in html
