import json
import time

import pytest
import torch

import ocrbench.profile.loader as loader
from ocrbench.bench.suite import dataset_charset
from ocrbench.cli import main
from ocrbench.models import create_model

TINY_SUITE = """
name: tiny
models: [line_cnn_tiny]
data: {name: synth-lines, height: 32, train_size: 64, val_size: 8, test_size: 8, options: {max_chars: 6}}
train: {batch_size: 8, device: cpu}
"""


@pytest.fixture
def tiny_suite(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SUITE)
    return str(path)


def test_training_rows_get_the_data_wait_share_on_the_suites_data(tiny_suite, capsys, one_thread):
    args = ["profile", "--model", "line_cnn_tiny", "--mode", "infer,train", "--data-share", tiny_suite,
            "--workers", "0", "--batch-size", "8", "--warmup", "1", "--iters", "4", "--device", "cpu", "--no-save"]
    assert main(args + ["--json"]) == 0
    infer, train = json.loads(capsys.readouterr().out)["rows"]
    assert "data_wait_share" not in infer  # inference takes no batches from the loader
    assert train["height"] == 32 and train["data_share_suite"] == "tiny" and train["data_share_workers"] == 0
    assert 0 < train["data_wait_share"] < 1 and train["data_lines_per_s"] > 0 and train["data_share_steps"] == 4
    assert main(args) == 0
    assert "data wait" in capsys.readouterr().out


class _SlowLines(torch.utils.data.Dataset):
    """A training split whose every line takes ``delay`` seconds to load."""

    def __init__(self, dataset, delay: float):
        self.dataset, self.delay = dataset, delay

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        time.sleep(self.delay)
        return self.dataset[i]


def test_the_share_measures_waiting_for_batches(tiny_suite, monkeypatch, one_thread):
    """A loader that sleeps 50 ms per line must dominate a tiny model's step; without the sleep it must not."""
    real = loader.create_dataset
    suite = loader.suite_for_data_share(tiny_suite, workers=0)

    def share(delay: float) -> float:
        monkeypatch.setattr(loader, "create_dataset", lambda *a: _SlowLines(real(*a), delay))
        model = create_model("line_cnn_tiny", dataset_charset(real("synth-lines", "train", suite.data)),
                             input_height=32)
        return loader.measure_data_share(model, suite, torch.device("cpu"), 8, "fp32", False, 1, 3)[
            "data_wait_share"]

    slow, fast = share(0.05), share(0.0)
    assert slow > 0.6 and fast < slow


@pytest.mark.parametrize("extra, message", [
    (["--workers", "2"], "add --data-share"),
    (["--data-share", "--workers", "two"], "train.num_workers must be an integer >= 0 or 'auto'"),
    (["--data-share", "no_such_suite"], "no_such_suite"),
])
def test_bad_data_share_options_are_one_line(extra, message, capsys):
    assert main(["profile", "--model", "line_cnn_tiny", "--no-save", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
