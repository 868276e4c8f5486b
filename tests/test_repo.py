"""Repository hygiene: packaging, notebooks, secrets and lint."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tokenize
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from . import notebooks as nbs

ROOT = nbs.ROOT


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec.strip(), maxsplit=1)[0].lower()


def _tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode != 0:  # not a git checkout (an sdist): walk the tree instead
        return [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


#: Every Python the CI matrix runs (tools/matrix.sh), oldest Debian 12 build first.
MATRIX_PYTHONS = ("3.11.2", "3.11.7", "3.13.5", "3.14.8", "3.15.0")


def _environment_yml() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_requirement_name(d) for d in pyproject["project"]["dependencies"]}
    env = _environment_yml()
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    conda = {_requirement_name(d) for d in deps if isinstance(d, str)}
    pip_section = [d for d in deps if isinstance(d, dict)]
    assert pip_section and "-e ." in pip_section[0]["pip"], "environment.yml must pip install -e ."
    assert "python" in conda
    assert "pip" in conda
    assert conda - {"python", "pip"} == runtime


def test_environment_yml_python_is_the_supported_range():
    """conda gets a range, not a pin: the same floor as requires-python, every CI Python inside."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requires = SpecifierSet(pyproject["project"]["requires-python"])
    deps = _environment_yml()["dependencies"]
    specs = [d for d in deps if isinstance(d, str) and _requirement_name(d) == "python"]
    assert len(specs) == 1, specs
    text = specs[0][len("python") :].replace(" ", "")
    assert text[:1] in "<>!~" and not text.startswith("=="), (
        f"a range like python>=3.11,<3.16, not {specs[0]!r}"
    )
    conda = SpecifierSet(text)
    for version in MATRIX_PYTHONS:
        assert version in conda, f"environment.yml excludes Python {version}, which CI tests"
    for minor in range(6, 30):
        for patch in (0, 2, 5, 99):
            version = f"3.{minor}.{patch}"
            if version in conda:
                assert version in requires, f"environment.yml allows {version}, pyproject does not"
    # The same floor: the oldest Python pyproject accepts is one conda may pick.
    floor = min(s.version for s in requires if s.operator == ">=")
    assert f"{floor}.0" in conda and f"{floor}.0" in requires


def _constraints() -> list[Requirement]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return [Requirement(ln.split("#", 1)[0]) for ln in lines if ln.split("#", 1)[0].strip()]


def test_constraints_pin_every_runtime_and_dev_dependency():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = {_requirement_name(d) for d in pyproject["project"]["dependencies"]}
    wanted |= {_requirement_name(d) for d in pyproject["project"]["optional-dependencies"]["dev"]}
    pinned = set()
    for req in _constraints():
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", (
            f"constraints.txt must pin exact versions: {req}"
        )
        pinned.add(req.name.lower().replace("_", "-"))
    assert wanted <= pinned, f"not pinned: {sorted(wanted - pinned)}"


@pytest.mark.parametrize("python", MATRIX_PYTHONS)
def test_constraints_pin_each_package_once_for_every_supported_python(python):
    """A pin that needs a newer Python (soupsieve 3+ needs 3.11.5) gets a marker and a fallback."""
    env = {"python_full_version": python, "python_version": ".".join(python.split(".")[:2])}
    applies: dict[str, list[str]] = {}
    for req in _constraints():
        if req.marker is None or req.marker.evaluate(env):
            applies.setdefault(req.name.lower(), []).append(str(req.specifier))
    twice = {name: pins for name, pins in applies.items() if len(pins) != 1}
    assert not twice, f"on Python {python} these have more than one pin: {twice}"
    names = {req.name.lower() for req in _constraints()}
    assert set(applies) == names, f"no pin on Python {python} for {sorted(names - set(applies))}"


@pytest.mark.parametrize("path", nbs.lessons() + nbs.solutions(), ids=nbs.short_name)
def test_notebooks_are_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {index} has outputs: clear them"
            assert cell.get("execution_count") is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("path", nbs.lessons(), ids=lambda p: p.name)
def test_lesson_structure(path):
    """Header with goals first; summary, exercises and navigation at the end."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    number = path.name[:2]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# {number} · "), "the first line is '# NN · Title'"
    assert re.search(r"(?i)\bgoals?\b|you will be able to", first.source)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"(?im)^#+ .*summary", text), "a summary section"
    assert re.search(r"(?im)^#+ .*exercise", text), "an exercises section"
    assert "### BEGIN SOLUTION" not in "\n".join(c.source for c in nb.cells), (
        "solutions live in notebooks/solutions/"
    )


def _code_uses_verify_false(source: str) -> bool:
    """True when Python *code* (not a comment, string or docstring) passes ``verify=False``."""
    try:
        tokens = [
            t.string
            for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type in (tokenize.NAME, tokenize.OP)
        ]
    except (tokenize.TokenError, SyntaxError):
        return "verify=False" in source.replace(" ", "")
    return any(tokens[i : i + 3] == ["verify", "=", "False"] for i in range(len(tokens) - 2))


def test_verify_false_only_in_the_man_in_the_middle_lesson():
    offenders = []
    for path in _tracked_files():
        if "07_man_in_the_middle" in path.name or path.name == "test_repo.py":
            continue
        if path.suffix == ".py":
            sources = [path.read_text()]
        elif path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            sources = [c.source for c in nb.cells if c.cell_type == "code"]
        else:
            continue
        if any(_code_uses_verify_false(src) for src in sources):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_key_material_or_key_logs_in_the_repository():
    offenders = []
    for path in _tracked_files():
        if path.suffix in {".key", ".p12", ".pfx", ".pcap", ".pcapng", ".keylog"}:
            offenders.append(str(path.relative_to(ROOT)))
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if re.search(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----\s*\n[A-Za-z0-9+/]{40}", text):
            offenders.append(str(path.relative_to(ROOT)))
        if re.search(r"(?m)^(CLIENT_RANDOM|CLIENT_HANDSHAKE_TRAFFIC_SECRET) [0-9a-f]{64} ", text):
            if "tests/vectors" not in str(path):  # RFC 8448's published example keys
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_sys_path_hacks():
    offenders = [
        str(p.relative_to(ROOT))
        for p in _tracked_files()
        if p.suffix in {".py", ".ipynb"}
        and "sys.path" in p.read_text(errors="replace")
        and p.name != "test_repo.py"
    ]
    assert offenders == []


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "helpers", "tests", "notebooks", "bench", "tools"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_helpers_import_without_side_effects():
    """Importing every helpers module starts no thread, opens no socket, writes nothing."""
    code = (
        "import pkgutil, threading, importlib, helpers, os\n"
        "before = threading.active_count()\n"
        "fds = len(os.listdir('/proc/self/fd'))\n"
        "for m in pkgutil.walk_packages(helpers.__path__, 'helpers.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "assert threading.active_count() == before, 'a module started a thread on import'\n"
        "print(len(os.listdir('/proc/self/fd')) - fds)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) <= 2, "a module left files or sockets open on import"


def test_navigation_is_up_to_date():
    """README's table and each notebook's previous/next links match the notebooks' titles."""
    result = subprocess.run(
        [sys.executable, "tools/navigation.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_helpers_module_is_in_the_module_map():
    """``helpers/__init__.py`` is the learner's map: a module missing from it is a module nobody opens."""
    import helpers

    doc = helpers.__doc__ or ""
    modules = {
        p.stem if p.is_file() else p.name
        for p in (ROOT / "helpers").iterdir()
        if not p.name.startswith("_")
        and ((p.is_file() and p.suffix == ".py") or (p / "__init__.py").is_file())
    }
    missing = sorted(m for m in modules if f"``{m}``" not in doc)
    assert not missing, f"add these to the module map in helpers/__init__.py: {missing}"


# `make test-matrix` / .ci/run: which environments gate CI (tools/matrix.sh --summary reads the
# recorded result of each cell and exits non-zero when a gating one did not pass).
_ALL_PASS = {c: "passed" for c in ("reference", "trixie", "bookworm", "forky", "forky-py3.15")}


@pytest.mark.parametrize(
    ("results", "gate"),
    [
        (_ALL_PASS, 0),
        ({**_ALL_PASS, "forky": "FAILED (3 tests, exit 2)", "forky-py3.15": "SETUP FAILED"}, 0),
        ({**_ALL_PASS, "trixie": "UNAVAILABLE (archive)"}, 0),  # an archive outage is not a test
        ({**_ALL_PASS, "bookworm": "FAILED (1 tests, exit 2)"}, 1),
        ({**_ALL_PASS, "trixie": "SETUP FAILED"}, 1),
        ({**_ALL_PASS, "reference": "FAILED (2 tests, exit 1)"}, 1),
        ({c: r for c, r in _ALL_PASS.items() if c != "bookworm"}, 1),  # a gate that never ran
    ],
    ids=[
        "all-pass",
        "reported-fail",
        "archive-down",
        "bookworm-fails",
        "trixie-setup",
        "reference-fails",
        "bookworm-missing",
    ],
)
def test_test_matrix_gates_on_reference_trixie_and_bookworm(tmp_path, results, gate):
    (tmp_path / "results").mkdir()
    for cell, result in results.items():
        row = [cell, "-", "3.13.5", "3.5.9", "debian", result, "1", "-"]
        (tmp_path / "results" / f"{cell}.tsv").write_text("\t".join(row) + "\n")
    run = subprocess.run(
        ["bash", "tools/matrix.sh", "--summary"],
        cwd=ROOT,
        env={**os.environ, "MATRIX_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == gate, run.stdout + run.stderr
    assert "matrix summary" in run.stdout


def _helper_modules(nb) -> set[str]:
    """The top-level helpers modules a notebook's code imports (read with ast, not regexes)."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    ipython = TransformerManager()  # turns obj??, %magic and !shell into plain Python
    found: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(ipython.transform_cell(cell.source))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "helpers":
                if node.module == "helpers":
                    found.update(alias.name for alias in node.names)
                else:
                    found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(
                    a.name.split(".")[1] for a in node.names if a.name.startswith("helpers.")
                )
    return found


@pytest.mark.parametrize("path", nbs.lessons(), ids=lambda p: p.name)
def test_every_helper_a_lesson_calls_is_named_by_its_file(path):
    """The notebook standard: a learner told about a helper can open it (helpers/x.py or helpers/x/)."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(cell.source for cell in nb.cells)
    modules = _helper_modules(nb)
    assert modules, f"{path.name} imports no helpers module: is the parser wrong?"
    unnamed = sorted(m for m in modules if f"helpers/{m}" not in text)
    assert not unnamed, f"{path.name} calls helpers it never names by file: {unnamed}"
