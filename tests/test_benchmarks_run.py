"""The pytest-benchmark suites in benchmarks/ must keep working: run each benchmark once, untimed.

A subprocess (rather than adding benchmarks/ to testpaths) so that the default ``pytest`` never times anything
(``--benchmark-disable`` cannot leak into ``tox -e bench``) and the benchmarks' own ``--device`` option and
conftest stay separate from the tests'.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmarks_run_once_untimed(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "--benchmark-disable", "-q",
                           "-p", "no:cacheprovider", "--device", "cpu",
                           f"--benchmark-storage=file://{tmp_path}"],  # nothing left in the checkout
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    # exit status 0: every benchmark ran and passed (5 would mean none was collected)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
