import json
from dataclasses import replace

from ocrbench.cli import main
from ocrbench.records import read_records


def test_profile_command_json_rows(tmp_path, capsys):
    code = main(["profile", "--model", "crnn_tiny,line_cnn_tiny", "--height", "32", "--width", "128",
                 "--batch-size", "2", "--warmup", "1", "--iters", "2", "--precision", "fp32,bf16",
                 "--grad-checkpointing", "both", "--device", "cpu", "--threads", "1", "--results", str(tmp_path),
                 "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    # per model: infer × 2 precisions + train × 2 precisions × 2 checkpointing settings
    assert len(rows) == 2 * (2 + 4)
    assert {r["status"] for r in rows if r["precision"] == "bf16"} == {"n/a"}
    assert all(r["status"] == "ok" and r["threads"] == 1 for r in rows if r["precision"] == "fp32")
    assert len(read_records(tmp_path / "profiles.jsonl")) == len(rows)


def test_profile_command_text_and_unknown_model(tmp_path, capsys):
    assert main(["profile", "--model", "line_cnn_tiny", "--mode", "infer", "--height", "32", "--width", "64",
                 "--batch-size", "1", "--warmup", "0", "--iters", "1", "--device", "cpu", "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "GMACs/line" in out and "line_cnn_tiny" in out and "FLOPs = 2 x MACs" in out
    assert main(["profile", "--model", "no_such_net", "--no-save"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_a_flop_cross_check_disagreement_is_shown(monkeypatch, capsys):
    """--cross-check-flops records fvcore's count beside ours and says so when they differ by more than 1%."""
    import ocrbench.profile.fvcore_check as fvcore_check

    args = ["profile", "--model", "line_cnn_tiny", "--mode", "infer", "--height", "32", "--width", "64",
            "--batch-size", "1", "--warmup", "0", "--iters", "1", "--device", "cpu", "--no-save",
            "--cross-check-flops"]
    assert main(args + ["--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["fvcore_macs_per_line_infer"] == row["macs_per_line_infer"] > 0 and "macs_cross_check" not in row
    real = fvcore_check.count_flops_fvcore
    monkeypatch.setattr(fvcore_check, "count_flops_fvcore",
                        lambda m, i: replace(real(m, i), macs=int(real(m, i).macs * 1.05)))
    assert main(args) == 0
    ours = row["macs_per_line_infer"]
    expected = f"MACs cross-check: forward: fvcore {int(ours * 1.05):,} MACs vs {ours:,} (+5.0%)"
    assert expected in capsys.readouterr().out
