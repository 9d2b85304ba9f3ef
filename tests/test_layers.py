"""The wings' layers contract (pyproject.toml's [tool.importlinter]) run by import-linter on a
copy of the package: the copy as it is keeps it, and one import against the layers breaks it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The command `lint-imports` runs, from this interpreter's own import-linter; in a subprocess,
# since grimp finds the package to analyse by importing its spec, and this process has the
# real one imported already.
LINT_IMPORTS = [sys.executable, "-c",
                "import sys; from importlinter.cli import lint_imports_command as c; "
                "sys.exit(c())", "--no-cache"]


def _copy(tmp_path):
    shutil.copytree(ROOT / "fcnn_cli", tmp_path / "fcnn_cli",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _lint_imports(tree):
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(LINT_IMPORTS, cwd=tree, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_package_keeps_its_layers(tmp_path):
    result = _lint_imports(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_an_import_against_the_layers_breaks_the_contract(tmp_path):
    tree = _copy(tmp_path)
    errors = tree / "fcnn_cli" / "core" / "errors.py"
    text = errors.read_text()
    errors.write_text(text + "\nimport fcnn_cli.engine\n")
    line = len((text + "\n").splitlines()) + 1
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "fcnn_cli.core is not allowed to import fcnn_cli.engine" in result.stdout
    assert f"fcnn_cli.core.errors -> fcnn_cli.engine (l.{line})" in result.stdout, result.stdout
