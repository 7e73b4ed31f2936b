"""The leaderboard plot: every point's label readable (inside its panel, over no other label)."""

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from ocrbench.report.leaderboard import folder_report, with_schedule
from ocrbench.report.plots import leaderboard_figure, plot_leaderboard

REAL = Path(__file__).resolve().parents[2] / "results" / "real"


@pytest.fixture
def real_table():
    return with_schedule(folder_report(REAL).table)


def label_boxes(fig):
    fig.canvas.draw()
    return [(ax, [t.get_window_extent() for t in ax.texts]) for ax in fig.axes]


def crowded(table):
    """Four models at the worst CER, each with a variant of its own: four two-line labels stack at the top."""
    worst = table["cer"].max()
    return table.assign(cer=[worst if m != "resnet_ctc_small" else worst - 0.1 for m in table["model"]],
                        train_lines_budget=[250 * (i + 1) for i in range(len(table))])


@pytest.mark.parametrize("make", [lambda t: t, crowded], ids=["as measured", "crowded"])
def test_labels_stay_inside_their_panel_and_apart(real_table, make):
    table = make(real_table)
    fig = leaderboard_figure(table)
    try:
        for ax, boxes in label_boxes(fig):
            frame = ax.get_window_extent()
            assert boxes, "every panel labels its points"
            assert all(b.y1 <= frame.y1 + 0.5 and b.y0 >= frame.y0 - 0.5 for b in boxes), "a label left its panel"
            assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), "labels overlap"
    finally:
        plt.close(fig)


def test_a_variant_every_point_shares_is_said_once_in_the_title(real_table, tmp_path):
    fig = leaderboard_figure(real_table)
    try:
        assert "from pretrain-s0 (zoo)" in fig._suptitle.get_text()
        assert not any("from pretrain" in t.get_text() for ax in fig.axes for t in ax.texts)
    finally:
        plt.close(fig)
    assert plot_leaderboard(real_table, tmp_path / "p.png").stat().st_size > 0
