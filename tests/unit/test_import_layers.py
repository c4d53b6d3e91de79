"""Inference and evaluation never import training code (train.py, training/, finetune.py, the pretexts).

Two checks: importing the inference and evaluation modules, with every module their functions import, in a fresh
interpreter leaves no training module in ``sys.modules``; and following every ``import`` statement of those
modules, including the ones inside functions (run only when a function is called), through the mocli modules they
reach never arrives at a training module.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import mocli

PACKAGE = Path(mocli.__file__).resolve().parent
TRAINING = ("mocli.train", "mocli.training", "mocli.finetune", "mocli.pretexts")
INFERENCE = (
    "mocli.api", "mocli.pipeline", "mocli.lift", "mocli.predict", "mocli.windows", "mocli.actions",
    "mocli.action_labels", "mocli.models.action_text", "mocli.mesh", "mocli.mesh.meshes", "mocli.completion",
    "mocli.evaluation", "mocli.evaluation.runner", "mocli.evaluation.h36m", "mocli.evaluation.h36m_protocol",
    "mocli.evaluation.mocap", "mocli.evaluation.generalisation", "mocli.evaluation.ntu", "mocli.evaluation.mesh",
    "mocli.data.transforms", "mocli.metrics", "mocli.infer_run", "mocli.infer_setup", "mocli.result_folder",
    "mocli.results", "mocli.trajectory", "mocli.keypoints", "mocli.export",
)  # fmt: skip


def _is_training(name: str) -> bool:
    return any(name == t or name.startswith(t + ".") for t in TRAINING)


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return PACKAGE / "__init__.py"
    rel = Path(*parts)
    for path in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(name: str) -> set[str]:
    """The mocli modules named by every import statement of module ``name`` (module level or in a function)."""
    path = _module_file(name)
    if path is None:
        return set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from mocli.x import submodule`
    return {m for m in found if m.startswith("mocli") and _module_file(m) is not None}


def _reached(start: str) -> dict[str, str]:
    """Every mocli module reachable from ``start`` through import statements -> the module that imports it."""
    seen, todo = {start: ""}, [start]
    while todo:
        current = todo.pop()
        parent = current.rpartition(".")[0]
        for name in _imports(current) | ({parent} if parent.startswith("mocli") else set()):
            if name not in seen:
                seen[name] = current
                todo.append(name)
    return seen


def test_importing_inference_and_evaluation_loads_no_training_module():
    """In a fresh interpreter: the modules, and every module their functions import when called."""
    names = sorted(set().union(*(_reached(start) for start in INFERENCE)))
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({TRAINING!r}))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_no_import_statement_of_inference_or_evaluation_reaches_training_code():
    bad = {}
    for start in INFERENCE:
        reached = _reached(start)
        for name in reached:
            if _is_training(name):
                chain, at = [name], name
                while reached[at]:
                    at = reached[at]
                    chain.append(at)
                bad[start] = " <- ".join(chain)
                break
    assert not bad, "\n".join(f"{k}: {v}" for k, v in bad.items())


def test_the_import_walk_sees_imports_inside_functions(tmp_path):
    """The walk is not blind: a training module reaches mocli.train, and a function-level import is followed."""
    assert "mocli.train" in _reached("mocli.cli.pretrain")  # imported inside the command function only
    assert _is_training("mocli.pretexts.mpm") and not _is_training("mocli.trainer_free")
