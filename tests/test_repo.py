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
from collections.abc import Iterator
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


def test_the_environment_check_lists_every_runtime_dependency():
    # Notebook 00's check (helpers/environment.py) is what a learner runs first: a runtime
    # dependency missing from it would be missing from the one place that says "install it".
    from helpers.environment import RUNTIME_PACKAGES

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_requirement_name(d) for d in pyproject["project"]["dependencies"]}
    assert set(RUNTIME_PACKAGES) == runtime


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
    for extra in ("dev", "classroom"):  # classroom: make hub, make assignments (issue 16)
        wanted |= {
            _requirement_name(d) for d in pyproject["project"]["optional-dependencies"][extra]
        }
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


_KEY_FILE_SUFFIXES = {".key", ".p12", ".pfx", ".pcap", ".pcapng", ".keylog"}

# A line break as a file may hold it: a real one, or escaped once or more (a backslash and an n
# in JSON or a Python string literal; two backslashes for a Python string inside a notebook).
_BREAK = r"(?:\r?\n|(?:\\+r)?\\+n)"
_SECRET_PATTERNS = {
    # BEGIN line, optional headers (Proc-Type/DEK-Info) and blank line, then real base64.
    "private key": re.compile(
        rf"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[ \t]*{_BREAK}"
        rf"(?:[A-Za-z-]+:[^\n\\]*{_BREAK}|[ \t]*{_BREAK})*[A-Za-z0-9+/]{{40}}"
    ),
    # An NSS key-log line; inside JSON it follows an escaped break or a quote, not a real break.
    "key log": re.compile(
        r"(?<![A-Z0-9_])(?:CLIENT_RANDOM|CLIENT_EARLY_TRAFFIC_SECRET|EARLY_EXPORTER_SECRET"
        r"|(?:CLIENT|SERVER)_HANDSHAKE_TRAFFIC_SECRET|(?:CLIENT|SERVER)_TRAFFIC_SECRET_\d+"
        r"|EXPORTER_SECRET)[ \t]+[0-9a-fA-F]{64}[ \t]+[0-9a-fA-F]{32,}"
    ),
    # A field named keylog with a non-empty string (a capture's info), quotes escaped or not.
    "keylog field": re.compile(r"""\\*["']keylog\\*["']\s*:\s*\[?\s*\\*["'](?!\\*["'])"""),
}


def _json_strings(value) -> Iterator[str]:
    """Every string in parsed JSON, and each list of strings joined (a notebook's lines)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_strings(item)
    elif isinstance(value, list):
        if value and all(isinstance(item, str) for item in value):
            yield "".join(value)
        for item in value:
            yield from _json_strings(item)


def _secrets_in(path: Path) -> list[str]:
    """What in one file looks like key material: ``private key``, ``key log``, ``keylog field``.

    The raw text is searched with patterns that accept escaped line breaks; a JSON file or a
    notebook is also parsed, and every string in it (code cells, outputs, a capture's info)
    searched on its own, with the lines of a notebook's multi-line strings joined again.
    """
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return []
    texts = [text]
    if path.suffix in {".json", ".ipynb"}:
        try:
            texts += _json_strings(json.loads(text))
        except (ValueError, RecursionError):
            pass  # not JSON after all: the raw text was searched
    return [name for name, rx in _SECRET_PATTERNS.items() if any(rx.search(t) for t in texts)]


def test_no_key_material_or_key_logs_in_the_repository():
    offenders = []
    for path in _tracked_files():
        name = str(path.relative_to(ROOT))
        if path.suffix in _KEY_FILE_SUFFIXES:
            offenders.append(name)
            continue
        found = _secrets_in(path)
        if name.startswith("tests/vectors/"):  # RFC 8448's published example keys
            found = [f for f in found if f == "private key"]  # no key log there, but allowed
        if found:
            offenders.append(f"{name}: {', '.join(found)}")
    assert offenders == []


def _fresh_key_pem(encrypted: bool = False) -> str:
    """A private key made now (never committed), as PEM text."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    if encrypted:  # the traditional format, with Proc-Type/DEK-Info headers before the base64
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
        crypt = serialization.BestAvailableEncryption(b"lesson")
    else:
        fmt, crypt = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, crypt).decode()


def _fresh_keylog() -> str:
    random = os.urandom(32).hex()
    return "".join(
        f"{label} {random} {os.urandom(32).hex()}\n"
        for label in ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0")
    )


def _notebook(*, source: str = "x = 1", output: str | None = None, plain: str | None = None):
    cell = nbformat.v4.new_code_cell(source)
    if output is not None:  # nbformat writes multi-line outputs as a list of lines
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    if plain is not None:
        cell.outputs = [
            nbformat.v4.new_output("execute_result", data={"text/plain": plain}, execution_count=1)
        ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 99 · A test notebook"), cell]
    return nbformat.writes(nb)


# Each case: a file name, a function making its text, and what the scan must find there.
_PLANTED = {
    "pem-file": ("k.txt", lambda: _fresh_key_pem(), ["private key"]),
    "encrypted-pem": ("k.txt", lambda: _fresh_key_pem(encrypted=True), ["private key"]),
    "pem-in-json": ("c.json", lambda: json.dumps({"server": _fresh_key_pem()}), ["private key"]),
    "pem-in-python": ("k.py", lambda: f"KEY = {_fresh_key_pem()!r}\n", ["private key"]),
    "pem-in-notebook-code": (
        "n.ipynb",
        lambda: _notebook(source=f"KEY = {_fresh_key_pem()!r}"),
        ["private key"],
    ),
    "pem-in-notebook-output": (
        "n.ipynb",
        lambda: _notebook(output=_fresh_key_pem()),
        ["private key"],
    ),
    "keylog-file": ("keys.txt", _fresh_keylog, ["key log"]),
    "keylog-in-json": ("c.json", lambda: json.dumps({"notes": _fresh_keylog()}), ["key log"]),
    "keylog-in-notebook-output": (
        "n.ipynb",
        lambda: _notebook(plain=repr(_fresh_keylog())),
        ["key log"],
    ),
    "keylog-field": (
        "c.json",
        lambda: json.dumps({"info": dict(keylog="(secrets, in any shape)")}),
        ["keylog field"],
    ),
    "keylog-field-in-notebook": (
        "n.ipynb",
        lambda: _notebook(source="info = " + repr(dict(keylog="CLIENT_RANDOM ..."))),
        ["keylog field"],
    ),
}


@pytest.mark.parametrize("case", _PLANTED, ids=_PLANTED)
def test_the_secret_scan_finds_key_material_inside_json_python_and_notebooks(tmp_path, case):
    name, make, expected = _PLANTED[case]
    path = tmp_path / name
    path.write_text(make())
    assert _secrets_in(path) == expected


def test_the_secret_scan_finds_a_capture_saved_with_its_key_log(tmp_path):
    """The audit's reproduction (L7): a real capture, saved with and without its key log."""
    import ssl

    from helpers.capture import capture_memory
    from helpers.pki import CA

    root = CA("Scan Test Root")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    root.issue("localhost").configure_server(server)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    root.configure_trust(client)
    capture = capture_memory(client, server)
    assert _secrets_in(capture.save(tmp_path / "default.json")) == []
    with pytest.warns(UserWarning):
        saved = capture.save(tmp_path / "with-keylog.json", include_keylog=True)
    assert _secrets_in(saved) == ["key log", "keylog field"]


@pytest.mark.parametrize(
    "text",
    [
        "load_private_key(b'-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n')",
        'check_no_secrets("-----BEGIN PRIVATE KEY-----")',
        'secret = parse_keylog(capture.info["keylog"])[random]',
        json.dumps({"keylog": "", "withheld": ["info.keylog"]}),
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET <client_random, 64 hex digits> <secret, hex>",
    ],
    ids=["dummy-test-key", "marker-only", "keylog-lookup", "empty-keylog", "format-docs"],
)
def test_the_secret_scan_lets_code_and_docs_about_secrets_through(tmp_path, text):
    path = tmp_path / "ok.py"
    path.write_text(text)
    assert _secrets_in(path) == []


# --- the suite cleans up after itself (audit N2) -----------------------------------------

_CHILD_TEST = """\
import os
from pathlib import Path


def test_writes_a_key_into_the_cache():
    cache = Path(os.environ["TLS_COURSE_CACHE"])
    print("CACHE=" + str(cache))
    (cache / "lab" / "gen-1").mkdir(parents=True)
    key = cache / "lab" / "gen-1" / "leaf-key.pem"
    key.write_text("not a real key")
    key.chmod(0o600)
    assert {FAIL}
"""


def _run_child_suite(tmp_path: Path, *, fail: bool, cache: Path | None = None) -> Path:
    """Run a one-test pytest session with our conftest; return the cache it used."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")  # keeps the project's addopts out
    (suite / "test_child.py").write_text(_CHILD_TEST.replace("{FAIL}", str(not fail)))
    env = {k: v for k, v in os.environ.items() if k != "TLS_COURSE_CACHE"}
    env["TMPDIR"] = str(tmp_path / "tmp")  # where mkdtemp puts the cache: ours alone
    (tmp_path / "tmp").mkdir()
    if cache is not None:
        env["TLS_COURSE_CACHE"] = str(cache)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"]
        + ["-p", "tests.conftest", "--rootdir", str(suite), str(suite / "test_child.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == (1 if fail else 0), run.stdout + run.stderr
    used = re.search(r"CACHE=(\S+)", run.stdout)
    assert used, run.stdout + run.stderr
    return Path(used.group(1))


def test_a_test_run_removes_the_cache_it_created_even_when_a_test_fails(tmp_path):
    used = _run_child_suite(tmp_path, fail=True)
    assert used.parent == tmp_path / "tmp" and used.name.startswith("tls-course-cache-")
    assert not used.exists(), "the session left its cache (lab and client keys) behind"
    assert list((tmp_path / "tmp").glob("tls-course-cache-*")) == []


def test_a_test_run_leaves_a_cache_the_caller_chose(tmp_path):
    mine = tmp_path / "my-cache"
    mine.mkdir()
    used = _run_child_suite(tmp_path, fail=False, cache=mine)
    assert used == mine and (mine / "lab" / "gen-1" / "leaf-key.pem").exists()


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
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "helpers",
            "tests",
            "notebooks",
            "bench",
            "tools",
            "classroom",
        ],
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
