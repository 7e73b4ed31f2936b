"""The real-handwriting track in the report: variant labels, document intervals, the data-efficiency and transfer
tables, the learning curve, the cross-collection matrix, the rank agreement and the multi-folder command."""

import argparse
import json
import re

import pandas as pd
import pytest

from ocrbench.commands import report as report_command
from ocrbench.errors import UserError
from ocrbench.report.leaderboard import (
    compare,
    compare_markdown,
    leaderboard,
    markdown,
    with_shared_model_costs,
    write_combined_report,
    write_report,
)
from ocrbench.report.tracks import (
    agreement_text,
    cross_matrix,
    efficiency_tables,
    has_learning_curve,
    has_variants,
    is_synthetic,
    long_cer,
    rank_agreement,
    variant_label,
)

REAL, OUT, SYNTH = "copiste-dun-jour", "stanford-memorials", "synth-lines"


def pages(cer: float, n: int = 12) -> dict:
    """``n`` documents of 100 characters, alternately easier and harder, whose corpus CER is ``cer``."""
    return {f"p{i}": [round(100 * cer * (0.5 if i % 2 else 1.5)), 100, 0, 20] for i in range(n)}


def real(model, cer, *, seed=0, dataset=REAL, budget=None, init="", decoder="greedy", **kw) -> dict:
    """A record of the real track, with the fields the track adds."""
    return {"suite": "real", "model": model, "dataset": dataset, "split": "test", "decoder": decoder, "cer": cer,
            "wer": 2 * cer, "seed": seed, "status": "ok", "config_id": f"{model}-{budget}-{init}",
            "device_name": "cpu", "train_dataset": REAL, "train_lines": budget or 4000,
            "train_lines_budget": budget, "init_from": init, "doc_errors": pages(cer), "padding_share": 0.3, **kw}


def synthetic(model, cer, *, seed=0, dataset=SYNTH) -> dict:
    """A record as the quick suite writes it today: none of the real track's fields."""
    return {"suite": "quick", "model": model, "dataset": dataset, "split": "test", "decoder": "greedy", "cer": cer,
            "wer": 2 * cer, "seed": seed, "status": "ok", "config_id": f"q-{model}", "device_name": "cpu",
            "train_dataset": SYNTH}


FAMILIES = {"crnn_small": 0.10, "line_cnn_small": 0.30, "attention_lm_small": 0.20}


def real_track() -> list[dict]:
    """Each family at 250 / 1000 / all lines, from scratch and from quick, on its own test set and out of domain."""
    rows = []
    for model, cer in FAMILIES.items():
        for budget, factor in ((250, 3.0), (1000, 1.6), (None, 1.0)):
            for init, gain in (("", 1.0), ("suite:quick", 0.7)):
                for dataset, shift in ((REAL, 1.0), (OUT, 2.0)):
                    rows.append(real(model, cer * factor * gain * shift, budget=budget, init=init, dataset=dataset))
    return rows


def synthetic_track() -> list[dict]:
    ranked = {"crnn_small": 0.02, "attention_lm_small": 0.05, "line_cnn_small": 0.03}  # two families swapped
    return [r for model, cer in ranked.items() for r in (synthetic(model, cer), synthetic(model, 0.9, dataset=OUT))]


def write_runs(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_labels_name_the_variant_and_old_records_keep_the_model_name():
    assert variant_label({"model": "crnn_small", "train_lines_budget": 250, "init_from": "suite:quick"}) == \
        "crnn_small · 250 lines · from quick"
    assert variant_label({"model": "crnn_small", "train_lines_budget": None, "init_from": "runs/a/b/checkpoint.pt"}) \
        == "crnn_small · from b/checkpoint.pt"
    assert variant_label({"model": "crnn_small", "train_lines_budget": float("nan"), "init_from": ""}) == "crnn_small"
    assert variant_label({"model": "crnn_small", "init_from": "zoo:crnn_small-pretrain-s0"}) == \
        "crnn_small · from pretrain-s0 (zoo)"
    assert variant_label({"model": "crnn_small"}) == "crnn_small"
    assert is_synthetic("synth-lines") and not is_synthetic(REAL) and not is_synthetic("alto:/data/x")


def test_document_intervals_are_shown_and_join_the_rank_rule():
    # one seed each, CER 0.10 and 0.11: apart on seeds (points), together on documents -> a shared rank
    runs = pd.DataFrame([real("a", 0.10), real("b", 0.11), real("c", 0.40), real("a", 0.3, dataset=OUT)])
    table = leaderboard(runs).set_index("model")
    assert table.loc["a", "cer_doc_lo"] <= 0.10 <= table.loc["a", "cer_doc_hi"]
    assert list(table["rank"]) == [1, 1, 3] and pd.notna(table.loc["a", f"cer_doc_lo@{OUT}"])
    md = markdown(table.reset_index(), runs)
    assert "CER 95% (docs)" in md and "Padding %" in md and "(docs " in md and "share a rank" in md


def test_records_without_documents_keep_todays_columns():
    table = leaderboard(pd.DataFrame([synthetic("a", 0.1), synthetic("a", 0.2, seed=1)]))
    assert "cer_doc_lo" not in table and not has_variants(table)
    md = markdown(table, pd.DataFrame())
    assert "CER 95% (docs)" not in md and "Padding %" not in md


def test_efficiency_tables_put_budgets_in_columns_and_starts_in_rows():
    tables = efficiency_tables(long_cer(leaderboard(pd.DataFrame(real_track()))))
    assert list(tables) == [REAL, OUT]  # the training collection's own test split first
    in_domain = tables[REAL]
    assert list(in_domain.columns) == ["250", "1000", "all"]
    assert list(in_domain.index[:2]) == ["attention_lm_small · scratch", "attention_lm_small · from quick"]
    assert in_domain.loc["crnn_small · scratch", "250"] == "0.300"
    assert in_domain.loc["crnn_small · from quick", "all"] == "0.070"
    assert tables[OUT].loc["crnn_small · scratch", "all"] == "0.200"


def test_a_clash_in_one_cell_keeps_both_rows_apart():
    runs = pd.DataFrame([real("a", 0.1), real("a", 0.2, device_name="gpu")])
    table = efficiency_tables(long_cer(leaderboard(runs.assign(train_lines_budget=250))))[REAL]
    assert len(table) == 2 and all("[a-None- on " in key for key in table.index)


def test_a_longer_schedule_is_a_row_of_its_own_and_no_point_of_the_curves():
    longer = real("crnn_small", 0.05, init="suite:quick", steps_budget=3000) | {"config_id": "longer"}
    rows = [dict(r, steps_budget=1000) for r in real_track()] + [longer, synthetic("crnn_small", 0.02)]
    points = long_cer(leaderboard(pd.DataFrame(rows)))
    assert set(points.loc[points["schedule"] != "", "label"]) == {"crnn_small · from quick · 3000 steps"}
    table = efficiency_tables(points)[REAL]
    assert table.loc["crnn_small · from quick · 3000 steps", "all"] == "0.050"
    assert table.loc["crnn_small · from quick", "all"] == "0.070"  # the 1,000-step row, not merged
    assert not points.loc[points["train_dataset"] == SYNTH, "schedule"].any()  # synthetic: no label
    assert has_learning_curve(leaderboard(pd.DataFrame(rows)))
    alone = [dict(longer, steps_budget=1000, train_lines_budget=None)]  # one budget only: a point, not a curve
    assert not has_learning_curve(leaderboard(pd.DataFrame(alone)))


def test_another_batch_size_or_learning_rate_is_a_row_of_its_own_too():
    usual = [dict(r, steps_budget=1000, batch_size=16, lr=0.003) for r in real_track()]
    other = real("crnn_small", 0.05, steps_budget=2000, batch_size=8, lr=0.006) | {"config_id": "other"}
    lr_only = real("line_cnn_small", 0.2, steps_budget=1000, batch_size=16, lr=0.001) | {"config_id": "lr"}
    points = long_cer(leaderboard(pd.DataFrame(usual + [other, lr_only])))
    assert set(points.loc[points["schedule"] != "", "label"]) == {"crnn_small · 2000 steps of 8 · lr 0.006",
                                                                  "line_cnn_small · lr 0.001"}
    table = efficiency_tables(points)[REAL]
    assert table.loc["crnn_small · scratch · 2000 steps of 8 · lr 0.006", "all"] == "0.050"
    assert table.loc["crnn_small · scratch", "all"] == "0.100"  # the usual recipe's row, not merged


def test_a_folder_of_two_recipes_labels_its_rows_and_names_both_recipes(tmp_path):
    """One suite whose entries set their own steps (real-long): its own report tells the rows apart, and the
    section's recipe line lists both recipes instead of the first row's."""
    usual = real("resnet_ctc_small", 0.2, init="suite:pretrain", steps=3000, steps_budget=3000, batch_size=16)
    longer = real("resnet_ctc_small", 0.15, init="suite:pretrain", steps=12000, steps_budget=12000,
                  batch_size=4) | {"config_id": "longer"}
    scratch = real("resnet_ctc_small", 0.25, steps=3000, steps_budget=3000, batch_size=16)
    write_report(write_runs(tmp_path / "long", [usual, longer, scratch]), plot=False)
    text = (tmp_path / "long" / "leaderboard.md").read_text()
    labels = set(re.findall(r"^\| \S+ +\| (resnet_ctc_small[^|]*?) +\|", text, re.M))
    assert labels == {"resnet_ctc_small · from pretrain · 12000 steps of 4", "resnet_ctc_small · from pretrain",
                      "resnet_ctc_small"}
    (recipes,) = re.findall(r"^Device: .*?; (\d+ steps of batch \d+ or \d+ steps of batch \d+),", text, re.M)
    assert set(recipes.split(" or ")) == {"12000 steps of batch 4", "3000 steps of batch 16"}
    # joined with a folder of another recipe: each section labels its own folder's recipes, the joined
    # data-efficiency table labels every row against the page's usual recipe (never merging two recipes)
    short = [real(m, 0.4, steps=1000, steps_budget=1000, batch_size=16) | {"config_id": f"s-{m}"}
             for m in ("resnet_ctc_small", "line_cnn_small", "crnn_small", "attention_lm_small")]
    write_combined_report([write_runs(tmp_path / "short", short), tmp_path / "long"], tmp_path / "page", plot=False)
    page = (tmp_path / "page" / "leaderboard.md").read_text()
    section = page[page.index("Results `" + str(tmp_path / "short")):page.index("Results `" + str(tmp_path / "long"))]
    assert "resnet_ctc_small " in section and "steps of" not in section.split("|", 1)[1]
    assert "resnet_ctc_small · from pretrain · 12000 steps of 4" in page and "resnet_ctc_small · scratch · 3000 steps" in page


def test_the_matrix_takes_the_best_greedy_configuration_per_collection_pair():
    runs = pd.DataFrame(real_track() + synthetic_track())
    matrix = cross_matrix(long_cer(leaderboard(runs)))
    assert list(matrix.index) == [REAL, SYNTH] and list(matrix.columns) == [REAL, OUT, SYNTH]
    assert matrix.loc[REAL, REAL] == "0.070 (crnn_small · from quick)"
    assert matrix.loc[SYNTH, SYNTH] == "0.020 (crnn_small)" and matrix.loc[SYNTH, REAL] == "–"


def test_rank_agreement_compares_the_headline_rows_of_the_families_in_both_tracks():
    runs = pd.DataFrame(real_track() + synthetic_track()[:4])  # line_cnn_small only in the real track
    scratch, tuned = rank_agreement(long_cer(leaderboard(runs)))  # the start from quick is a ranking of its own
    assert (scratch["real"], scratch["synthetic"], scratch["n"]) == (REAL, SYNTH, 2)
    assert scratch["rho"] == pytest.approx(1.0) and tuned["real_suite"] == "real · from quick"
    scratch, tuned = rank_agreement(long_cer(leaderboard(pd.DataFrame(real_track() + synthetic_track()))))
    assert scratch["n"] == 3 and scratch["rho"] == pytest.approx(0.5)  # crnn < attention < line; synthetic swaps two


def test_a_pretrained_start_is_ranked_apart_and_named():
    """The real track fine-tunes zoo checkpoints: its ranking is compared on its own, never merged with scratch."""
    zoo = [real(model, cer, init=f"zoo:{model}-pretrain-s0") for model, cer in
           {"crnn_small": 0.5, "attention_lm_small": 0.1, "line_cnn_small": 0.3}.items()]
    rows = rank_agreement(long_cer(leaderboard(pd.DataFrame(real_track() + zoo + synthetic_track()))))
    by_suite = {r["real_suite"]: r for r in rows}
    assert set(by_suite) == {"real", "real · from quick", "real · from pretrain-s0 (zoo)"}
    assert by_suite["real · from pretrain-s0 (zoo)"]["rho"] == pytest.approx(-1.0)  # the synthetic order reversed


def test_rank_agreement_ranks_each_synthetic_suite_on_its_own():
    """Two suites' synthetic test splits are different data: one ranking each, never the best of both merged;
    a suite with one family (synth-ablation) has no ranking to compare."""
    pretrain = [{**synthetic(m, cer), "suite": "pretrain", "config_id": f"p-{m}"}
                for m, cer in {"crnn_small": 0.5, "attention_lm_small": 0.6, "line_cnn_small": 0.7}.items()]
    ablation = [{**synthetic("crnn_small", 0.01), "suite": "synth-ablation", "config_id": "a"}]
    rows = rank_agreement(long_cer(leaderboard(pd.DataFrame(real_track() + synthetic_track() + pretrain + ablation))))
    rows = [r for r in rows if r["real_suite"] == "real"]  # from scratch (the start from quick: its own ranking)
    by_suite = {r["synthetic_suite"]: r for r in rows}
    assert set(by_suite) == {"quick", "pretrain"}
    assert by_suite["quick"]["rho"] == pytest.approx(0.5) and by_suite["pretrain"]["rho"] == pytest.approx(1.0)
    assert agreement_text(by_suite["pretrain"]).startswith(
        f"{REAL} (suite real) vs {SYNTH} (suite pretrain): ρ = 1.00 over n = 3 families")


def test_rank_agreement_ranks_each_recipe_of_a_suite_on_its_own():
    """A suite's rows made before its recipe changed are another ranking, never merged with today's."""
    first = [dict(r, steps_budget=1000, batch_size=16) for r in real_track()]
    reversed_cer = {"crnn_small": 0.9, "line_cnn_small": 0.5, "attention_lm_small": 0.1}  # synthetic's order reversed
    today = [real(model, cer, steps_budget=4000, batch_size=4) | {"config_id": f"t-{model}"}
             for model, cer in reversed_cer.items()]
    rows = rank_agreement(long_cer(leaderboard(pd.DataFrame(first + today + synthetic_track()))))
    by_suite = {r["real_suite"]: r for r in rows}
    assert set(by_suite) == {"real", "real · from quick", "real · 4000 steps of 4"}
    assert by_suite["real"]["rho"] == pytest.approx(0.5)  # the first recipe's ranking, as before
    assert by_suite["real · 4000 steps of 4"]["rho"] == pytest.approx(-1.0)


def test_one_folder_with_variants_gets_the_efficiency_section_and_a_learning_curve(tmp_path):
    written = write_report(write_runs(tmp_path / "real", real_track()))
    md = open(written["markdown"]).read()
    assert "## Data efficiency and transfer" in md and "| crnn_small · 250 lines · from quick " in md
    assert written["learning_curve"].endswith("learning_curve.png")
    write_runs(tmp_path / "real", synthetic_track())  # the same folder, no variants now: no stale curve
    assert "learning_curve" not in write_report(tmp_path / "real", plot=False)
    assert not (tmp_path / "real" / "learning_curve.png").exists()


def run_report(*argv) -> dict:
    parser = argparse.ArgumentParser()
    report_command.register(parser.add_subparsers())
    args = parser.parse_args(["report", *argv])
    return args.handler(args)


def test_several_folders_make_one_page_that_leads_with_real_handwriting(tmp_path):
    quick, real_dir = write_runs(tmp_path / "quick", synthetic_track()), write_runs(tmp_path / "real", real_track())
    out = run_report("--results", str(quick), "--results", str(real_dir), "--no-plot")
    md = open(out["written"]["markdown"]).read()
    assert out["written"]["markdown"] == str(quick / "leaderboard.md")  # default: the first folder
    order = [md.index(h) for h in ("## Real handwriting", "### Data efficiency", "## Cross-collection matrix",
                                   "## Rank agreement", "## Synthetic track (a smoke test)")]
    assert order == sorted(order)
    assert "ρ = 0.50 over n = 3 families" in md and "n = 3 is small" in md
    table = pd.read_csv(out["written"]["csv"])
    assert set(table["results"]) == {str(quick), str(real_dir)} and len(table) == 3 * 6 + 3


def test_the_multi_folder_options_are_checked(tmp_path):
    a, b = write_runs(tmp_path / "a", synthetic_track()), write_runs(tmp_path / "b", real_track())
    with pytest.raises(UserError, match="--compare takes one --results"):
        run_report("--results", str(a), "--results", str(b), "--compare", str(a))
    with pytest.raises(UserError, match="--out is for several"):
        run_report("--results", str(a), "--out", str(tmp_path / "x"))
    out = run_report("--results", str(a), "--results", str(b), "--out", str(tmp_path / "joint"), "--no-plot")
    assert out["written"]["markdown"] == str(tmp_path / "joint" / "leaderboard.md")
    assert run_report("--results", str(a), "--results", str(a), "--no-plot")["written"]["markdown"] == \
        str(a / "leaderboard.md")  # one folder given twice: its own report, as before


def test_comparisons_name_the_variant_of_each_row():
    table = leaderboard(pd.DataFrame(real_track()))
    labels = set(compare(table, table)["label"])
    assert "crnn_small · 250 lines · from quick" in labels and "crnn_small" in labels
    assert "| crnn_small · 1000 lines " in compare_markdown(compare(table, table))


def ablation_row(options, cer, augmentation="mild", **kw) -> dict:
    return {**synthetic("resnet_ctc_small", cer), "suite": "synth-ablation", "config_id": f"a-{options}-{augmentation}",
            "data_options": options, "augmentation": augmentation, **kw}


def test_rows_that_differ_in_data_options_or_augmentation_are_labelled_by_what_differs():
    rows = [ablation_row({}, 0.20), ablation_row({"max_chars": 80, "paper": "scan"}, 0.30),
            ablation_row({"max_chars": 80, "writers": ["cursive", "timesi"]}, 0.10),
            ablation_row({"max_chars": 80, "paper": "scan"}, 0.25, augmentation="htr"),
            synthetic("crnn_small", 0.15)]  # an older record: no fields, no label
    table = leaderboard(pd.DataFrame(rows)).set_index("config_id")
    labels = {cid: variant_label(row | {"model": row["model"]}) for cid, row in table.to_dict("index").items()}
    assert labels["a-{}-mild"] == "resnet_ctc_small · data defaults"
    assert labels["a-{'max_chars': 80, 'paper': 'scan'}-mild"] == "resnet_ctc_small · max_chars=80, paper=scan"
    assert labels["a-{'max_chars': 80, 'paper': 'scan'}-htr"] == \
        "resnet_ctc_small · augmentation=htr, max_chars=80, paper=scan"
    assert labels["a-{'max_chars': 80, 'writers': ['cursive', 'timesi']}-mild"] == \
        "resnet_ctc_small · max_chars=80, writers=2 listed"
    assert labels["q-crnn_small"] == "crnn_small"


def test_rows_that_agree_on_their_options_keep_plain_labels():
    rows = [ablation_row({"max_chars": 12}, 0.2, model="resnet_ctc_small"),
            {**ablation_row({"max_chars": 12}, 0.3), "model": "crnn_small", "config_id": "c"}]
    table = leaderboard(pd.DataFrame(rows))
    assert sorted(variant_label(r) for _, r in table.iterrows()) == ["crnn_small", "resnet_ctc_small"]


def test_an_ablation_folder_gets_a_variants_plot_and_a_plain_one_does_not(tmp_path):
    rows = [ablation_row({}, 0.2), ablation_row({"paper": "scan"}, 0.3),
            {**ablation_row({}, 0.7), "dataset": REAL}, {**ablation_row({"paper": "scan"}, 0.6), "dataset": REAL}]
    written = write_report(write_runs(tmp_path / "ablation", rows))
    assert written["variants"].endswith("variants.png") and (tmp_path / "ablation" / "variants.png").stat().st_size
    plain = write_report(write_runs(tmp_path / "plain", synthetic_track()))
    assert "variants" not in plain and not (tmp_path / "plain" / "variants.png").exists()


def test_a_row_alone_in_its_table_still_names_its_data():
    """French lines change the data version, so that row gets a table of its own: its label still says what sets
    it apart from the suite's other rows, not just the model name."""
    rows = [ablation_row({"max_chars": 80}, 0.20), ablation_row({}, 0.30),
            ablation_row({"max_chars": 80, "french": 0.5}, 0.25, data_version="3.other")]
    table = leaderboard(pd.DataFrame(rows))
    alone = table[table["config_id"] == "a-{'max_chars': 80, 'french': 0.5}-mild"].iloc[0]
    assert variant_label(alone) == "resnet_ctc_small · french=0.5, max_chars=80"
    assert set(table["variant"]) == {"max_chars=80", "data defaults", "french=0.5, max_chars=80"}


def test_a_joined_plot_takes_a_models_profiled_cost_from_the_folder_that_profiled_it():
    table = pd.DataFrame([
        {"model": "a", "train_dataset": REAL, "gmacs_per_line": 0.17},  # the suite that profiles
        {"model": "a", "train_dataset": REAL, "gmacs_per_line": None},  # a fine-tune in another folder
        {"model": "a", "train_dataset": SYNTH, "gmacs_per_line": None},  # another line height: not filled
        {"model": "b", "train_dataset": REAL, "gmacs_per_line": 0.1},
        {"model": "b", "train_dataset": REAL, "gmacs_per_line": 0.2},  # two profiles disagree: none chosen
        {"model": "b", "train_dataset": REAL, "gmacs_per_line": None}])
    filled = with_shared_model_costs(table)["gmacs_per_line"].tolist()
    assert filled[:2] == [0.17, 0.17] and pd.isna(filled[2]) and filled[3:5] == [0.1, 0.2] and pd.isna(filled[5])
