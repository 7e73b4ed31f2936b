"""Old module paths of ocrbench, importable after the layout of issue 23 (0.2): one meta-path finder instead
of a shim file per module (timm's register_model_deprecations, for modules). An old path imports the new module
itself (old pickles and ``monkeypatch.setattr("ocrbench.suite.x", ...)`` keep working); it warns, except the
paths a plugin author writes (README "Adding a model"), which stay. Remove the warned ones in 0.3.
Imports nothing of ours at module level: it is loaded by ``ocrbench/__init__.py`` before anything else."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    'ocrbench.callbacks': 'ocrbench.harness.callbacks',
    'ocrbench.data.base': 'ocrbench.data.samples',
    'ocrbench.data.build_assets': 'ocrbench.datasets._build_assets',
    'ocrbench.data.emnist': 'ocrbench.datasets.emnist',
    'ocrbench.data.emnist_lines': 'ocrbench.datasets.emnist_lines',
    'ocrbench.data.hershey': 'ocrbench.datasets._hershey',
    'ocrbench.data.iam': 'ocrbench.datasets.iam',
    'ocrbench.data.memorials': 'ocrbench.datasets.memorials',
    'ocrbench.data.synth_lines': 'ocrbench.datasets.synth_lines',
    'ocrbench.data.synth_pages': 'ocrbench.datasets.synth_pages',
    'ocrbench.data.xml_pages': 'ocrbench.datasets.xml_pages',
    'ocrbench.data.xml_pages.alto': 'ocrbench.datasets.xml_pages.alto',
    'ocrbench.data.xml_pages.check': 'ocrbench.datasets.xml_pages.check',
    'ocrbench.data.xml_pages.conventions': 'ocrbench.datasets.xml_pages.conventions',
    'ocrbench.data.xml_pages.folder': 'ocrbench.datasets.xml_pages.folder',
    'ocrbench.data.xml_pages.lines': 'ocrbench.datasets.xml_pages.lines',
    'ocrbench.data.xml_pages.page': 'ocrbench.datasets.xml_pages.page',
    'ocrbench.data.xml_pages.pagexml': 'ocrbench.datasets.xml_pages.pagexml',
    'ocrbench.detection_report': 'ocrbench.report.detection',
    'ocrbench.diagnostics.errors': 'ocrbench.diagnostics.error_analysis',
    'ocrbench.distributed': 'ocrbench.harness.distributed',
    'ocrbench.evaluate': 'ocrbench.harness.evaluate',
    'ocrbench.executors': 'ocrbench.bench.executors',
    'ocrbench.lr_find': 'ocrbench.diagnostics.lr_find',
    'ocrbench.metrics': 'ocrbench.harness.metrics',
    'ocrbench.models.base': 'ocrbench.models._base',
    'ocrbench.models.blocks': 'ocrbench.models._blocks',
    'ocrbench.models.detection': 'ocrbench.models._detection',
    'ocrbench.models.registry': 'ocrbench.models._registry',
    'ocrbench.models.seq2seq': 'ocrbench.models._seq2seq',
    'ocrbench.plots': 'ocrbench.report.plots',
    'ocrbench.profile.sweep': 'ocrbench.profile.batch_sweep',
    'ocrbench.schedule': 'ocrbench.lm.schedule',
    'ocrbench.selftest': 'ocrbench.diagnostics.selftest',
    'ocrbench.stats': 'ocrbench.report.stats',
    'ocrbench.suite': 'ocrbench.bench.suite',
    'ocrbench.sweep': 'ocrbench.bench.sweep',
    'ocrbench.train': 'ocrbench.harness.train',
    'ocrbench.viz': 'ocrbench.diagnostics.viz',
}

PUBLIC = {  # plugin authors' import paths: no warning
    'ocrbench.models.base',
    'ocrbench.models.blocks',
    'ocrbench.models.detection',
    'ocrbench.models.seq2seq',
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        if spec.name not in PUBLIC:
            warnings.warn(f"{spec.name} moved to {self.new}; import it from there (the old path goes in 0.3)",
                          DeprecationWarning, stacklevel=2)
        return importlib.import_module(self.new)

    def exec_module(self, module) -> None:  # the new module ran already
        pass


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds an old module path only when no file has it (just after the path finder on sys.meta_path)."""

    def find_spec(self, name, path=None, target=None):
        new = MOVED.get(name)
        return importlib.util.spec_from_loader(name, _Alias(new)) if new else None


def install() -> None:
    """Idempotent (tests re-import ocrbench from scratch: a finder of an earlier import is replaced)."""
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != MovedModuleFinder.__name__]
    # right after the path finder: a file always wins, and an editable install of an older checkout (whose
    # finder comes after the path finder) cannot serve an old path from there
    after = next((i + 1 for i, f in enumerate(sys.meta_path) if getattr(f, "__name__", "") == "PathFinder"),
                 len(sys.meta_path))
    sys.meta_path.insert(after, MovedModuleFinder())
