"""The layering of DESIGN.md holds: `lint-imports` (import-linter) keeps the contracts in pyproject.toml, and
breaks them when someone adds an upward import, an import of `agents` from `sim`, or an import cycle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    # The packages are found through sys.path: the tree under `root` comes first, before the installed one.
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "400"}  # one line per contract
    return subprocess.run([exe, "--no-cache", str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True)


def _copy_of_the_code(tmp_path: Path) -> Path:
    for name in ("sim", "agents"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layers_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


LAYERS, NO_AGENTS, NO_CYCLES = "Layers", "sim never imports agents", "No import cycles"


@pytest.mark.parametrize("module, line, broken", [
    # An upward import is also a cycle, since the layer above imports the one below.
    ("sim/core/errors.py", "from sim.runner import run  # noqa", {LAYERS, NO_CYCLES}),
    ("sim/model/plan.py", "    from sim.engines import analytic  # noqa", {LAYERS, NO_CYCLES}),  # in a function
    ("sim/runner.py", "import agents.engine  # noqa", {LAYERS, NO_AGENTS}),
    ("sim/retrieval/corpus.py", "from sim.retrieval import sources  # noqa", {NO_CYCLES}),  # within a layer
])
def test_a_bad_import_breaks_a_contract(tmp_path, module, line, broken):
    root = _copy_of_the_code(tmp_path)
    path = root / module
    text = path.read_text()
    if line.startswith("    "):  # inside a function: append a function that imports
        text += f"\n\ndef _scratch():\n{line}\n"
    else:
        text += f"\n{line}\n"
    path.write_text(text)
    result = _lint_imports(root)
    assert result.returncode == 1, result.stdout
    verdicts = {ln.rsplit(" ", 1)[0]: ln.rsplit(" ", 1)[1] for ln in result.stdout.splitlines()
                if ln.endswith((" KEPT", " BROKEN"))}
    assert len(verdicts) == 3, result.stdout
    assert {name for name, v in verdicts.items() if v == "BROKEN"} == {
        name for name in verdicts if name.startswith(tuple(broken))}, result.stdout
