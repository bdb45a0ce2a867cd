"""The code base passes ruff, whose configuration bans global random state (DESIGN.md, Seeding)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    return subprocess.run([exe, "check", "--no-cache", *args], cwd=cwd, capture_output=True, text=True)


def test_the_code_base_is_clean():
    result = _ruff("sim", "agents", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_global_random_state_is_banned(tmp_path):
    bad = tmp_path / "sim_module.py"
    bad.write_text("import random\nimport numpy as np\n\nnp.random.seed(1)\nx = random.random() + np.random.rand()\n")
    result = _ruff("--config", str(ROOT / "pyproject.toml"), str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert "TID251" in result.stdout and "`random` is banned" in result.stdout
    assert "numpy.random.seed" in result.stdout
