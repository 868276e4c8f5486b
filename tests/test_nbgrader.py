"""nbgrader, for real: ``make assignments``, a room's submissions autograded, the grades checked.

Everything runs through nbgrader itself, from the classroom venv (``make classroom-venv``,
``build/classroom/venv``): ``tools.assignments`` generates the student versions through
nbgrader's API, then the ``nbgrader`` commands a teacher types (docs/teaching.md) autograde
them in fresh kernels. Two students submit each assignment of ``NUMBERS``:

* ``solutions`` hands in the solutions (the answer cells of nbgrader's source, markers
  removed): full marks, and every notebook runs without a single error, demonstrations
  included (notebook 03 reads its host list from an assignment folder);
* ``stubs`` hands in the release untouched: zero, each test cell failing with the check's
  "not attempted yet".

Per exercise, the grade must equal what ``helpers.exercises`` itself says of the same code:
``check(function).passed``. A last test runs the whole exchange for one student (release,
fetch, submit, collect, autograde, feedback) exactly as the teacher's guide shows it.

Autograding kernels start their own lab and stay offline, as the notebook tests' kernels do
(tests/notebooks.py): ``TLS_COURSE_LAB`` (a teacher's shared lab) and ``TLS_COURSE_LIVE`` are
removed from their environment, the offline guard is in their IPython startup, and ``nbgrader
autograde`` runs in a loopback-only network namespace where the system allows one. Jupyter's
user directories point at empty folders, so no personal nbgrader config or kernel spec of the
machine takes part.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from helpers import exercises
from tools import assignments

from . import notebooks as nbs
from . import reporting

pytestmark = [pytest.mark.classroom, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
CLASSROOM_BIN = ROOT / "build" / "classroom" / "venv" / "bin"
COURSE_ID = "tls-course"
#: The lessons autograded here. Every lesson, two submissions each, took 81 s of autograding
#: on this 2-core machine, 101 s with it busy (2026-12-06), about the minute and a half a test
#: may take; these four took 24-28 s and cover the lab's servers (02), notebook 03's data file
#: read from an assignment folder, and the ACME lesson (10). TLS_COURSE_NBGRADER_LESSONS="all"
#: (or "01 08 ...") grades others. Every lesson's release is generated and checked regardless.
_CHOSEN = os.environ.get("TLS_COURSE_NBGRADER_LESSONS", "00 02 03 10")
ALL = [p.name[:2] for p in assignments.lessons()]
NUMBERS = ALL if _CHOSEN.strip() == "all" else sorted(_CHOSEN.split())
STUDENTS = ("solutions", "stubs")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """The environment of every nbgrader command: the classroom venv first on PATH (nbgrader
    runs ``alembic``), no shared lab, no live mode, empty Jupyter user directories."""
    if not (CLASSROOM_BIN / "nbgrader").exists():  # `make test` builds it first
        pytest.fail(f"no nbgrader in {CLASSROOM_BIN}: run `make classroom-venv` (make test does).")
    home = tmp_path_factory.mktemp("jupyter")
    # As for the notebook tests: no live mode, no shared lab, the offline guard in every kernel.
    environ = nbs.kernel_env(nbs.guarded_ipython_dir())
    environ["PATH"] = f"{CLASSROOM_BIN}{os.pathsep}{environ.get('PATH', '')}"
    environ["JUPYTER_CONFIG_DIR"] = str(home / "config")
    environ["JUPYTER_DATA_DIR"] = str(home / "data")
    return environ


@dataclass
class Run:
    times: dict[str, float] = field(default_factory=dict)

    def __call__(self, label: str, args: list[str], env: dict[str, str], cwd: Path) -> str:
        start = time.monotonic()
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        self.times[label] = self.times.get(label, 0.0) + time.monotonic() - start
        assert done.returncode == 0, (
            f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout + done.stderr


def nbgrader(*args: str) -> list[str]:
    return [str(CLASSROOM_BIN / "nbgrader"), *args]


def recorded(env: dict[str, str], record: Path) -> dict[str, str]:
    """``env`` with the offline guard's record file: every kernel writes an "install" line when
    its guard starts, then one line per attempt to leave the machine (helpers/netguard.py)."""
    return {**env, nbs.RECORD_ENV: str(record)}


def guard_record(record: Path) -> tuple[int, list[str]]:
    """How many kernels ran with the guard, and what they tried beyond loopback."""
    lines = (
        [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    )
    kernels = sum(1 for a in lines if a["action"] == "install")
    return kernels, [f"{a['action']} {a['target']}" for a in lines if a["action"] != "install"]


def offline(command: list[str]) -> list[str]:
    """``command`` in a loopback-only network namespace where the system has them, as the
    notebook tests' kernels run (tests/notebooks.py): autograding kernels cannot leave the machine."""
    return [*nbs.sandbox().prefix, *command]


def generate(course: Path, numbers: list[str], env: dict[str, str], run: Run) -> None:
    python = str(CLASSROOM_BIN / "python")
    run(
        "generate",
        [python, "-m", "tools.assignments", "--course-dir", str(course), *numbers],
        env,
        ROOT,
    )


def without_markers(source: str) -> str:
    """What a student would hand in: the solution's code, without nbgrader's marker comments."""
    keep = [
        line
        for line in source.splitlines()
        if line.strip() not in (assignments.BEGIN, assignments.END)
    ]
    return "\n".join(keep) + "\n"


def answers(path: Path) -> dict[str, str]:
    """The answer cells of a notebook, by grade id."""
    cells = nbformat.read(path, as_version=4).cells
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }


def submit(course: Path, student: str, solved: bool) -> None:
    """Write ``submitted/STUDENT/nbNN/`` as a collected submission: the release, with the
    answer cells filled in from nbgrader's source (``solved``) or left as they are."""
    for number in NUMBERS:
        (release,) = (course / "release" / f"nb{number}").glob("*.ipynb")
        nb = nbformat.read(release, as_version=4)
        if solved:
            source = answers(course / "source" / release.parent.name / release.name)
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if cell.metadata.get("nbgrader", {}).get("solution"):
                    cell.source = without_markers(source[gid])
        out = course / "submitted" / student / release.parent.name / release.name
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)


def verdict(gid: str, source: str) -> bool:
    """``helpers.exercises``' own verdict on an answer cell's code: ``check(fn).passed``."""
    key = gid.replace("-", ".", 1)
    namespace: dict = {"__name__": "__exercise__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, f"<{key}>", "exec"), namespace)  # noqa: S102 (the course's own cells)
    exercise = exercises.get(key)
    return exercise.check(namespace[exercise.name]).passed


@dataclass
class Graded:
    course: Path
    scores: dict[str, dict[str, float]]  # student -> grade id -> points
    totals: list[dict[str, str]]  # nbgrader export's grades.csv
    run: Run


@pytest.fixture(scope="module")
def course(env, tmp_path_factory) -> tuple[Path, Run]:
    course = tmp_path_factory.mktemp("course")
    run = Run()
    generate(course, ALL, env, run)
    return course, run


@pytest.fixture(scope="module")
def graded(course, env, pytestconfig) -> Graded:
    path, run = course
    submit(path, "solutions", solved=True)
    submit(path, "stubs", solved=False)
    # One command for every assignment and student ("*" is a glob over submitted/STUDENT/*).
    record = path / "guard.jsonl"
    autograde = offline(nbgrader("autograde", "*", "--create", "--force"))
    run("autograde", autograde, recorded(env, record), path)
    kernels, attempts = guard_record(record)
    # One kernel per submitted notebook, each guarded, none reaching for the network.
    assert (kernels, attempts) == (len(NUMBERS) * len(STUDENTS), []), (kernels, attempts)
    run("export", nbgrader("export", "--to", str(path / "grades.csv")), env, path)
    python = str(CLASSROOM_BIN / "python")
    out = run(
        "grades",
        [python, "-m", "tools.assignments", "--grades", "--json", "--course-dir", str(path)],
        env,
        ROOT,
    )
    scores = json.loads(out[out.index("{") :])
    with open(path / "grades.csv", newline="") as f:
        # Every generated assignment is in the gradebook; only NUMBERS were handed in.
        totals = [r for r in csv.DictReader(f) if r["assignment"] in {f"nb{n}" for n in NUMBERS}]
    graded = Graded(path, scores, totals, run)
    table = [
        f"nbgrader, {len(NUMBERS)} assignments x {len(STUDENTS)} submissions: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in run.times.items()),
        f"  autograding: {nbs.sandbox().summary}",
    ]
    for row in sorted(totals, key=lambda r: (r["assignment"], r["student_id"])):
        table.append(
            f"  {row['assignment']} {row['student_id']:>9}: {float(row['score']):g}/{float(row['max_score']):g}"
        )
    reporting.report(pytestconfig, table)
    return graded


def test_the_release_is_the_lessons_stubs_without_a_solution(course):
    path, _ = course
    releases = sorted((path / "release").glob("nb*/*.ipynb"))
    assert [r.parent.name for r in releases] == [f"nb{n}" for n in ALL]
    for release in releases:
        lesson = assignments.NOTEBOOKS / release.name
        solutions = assignments.SOLUTIONS / release.name
        assert assignments.verify_release(release, lesson, solutions) >= 2
        text = release.read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        lesson_text = lesson.read_text()
        for cell in nbformat.read(solutions, as_version=4).cells:
            for line in assignments.solution_lines(cell.source):
                if json.dumps(line)[1:-1] not in lesson_text:  # as the JSON file spells it
                    assert json.dumps(line)[1:-1] not in text, f"{release.name} gives away {line!r}"
        for cell in nbformat.read(release, as_version=4).cells:
            meta = cell.metadata.get("nbgrader")
            if meta and meta["grade"]:
                assert meta["locked"] and meta["points"] == 1, meta
                assert "assert result, result.message" in cell.source
            if meta:
                assert assignments.GRADE_ID.match(meta["grade_id"]), meta


def test_every_solution_fits_the_lessons_stub():
    """The graded answer is the solution's marked region in the lesson stub's frame (what the
    student gets), so nothing outside the region may be missing from the stub."""
    misfits = {}
    for lesson in assignments.lessons():
        stubs = {
            assignments.exercise_key(c): c.source for c in nbformat.read(lesson, as_version=4).cells
        }
        solutions = assignments.SOLUTIONS / lesson.name
        for cell in nbformat.read(solutions, as_version=4).cells:
            key = assignments.exercise_key(cell)
            if key:
                stub, solution = (
                    assignments.split_check(x, key) for x in (stubs[key], cell.source)
                )
                if extra := assignments.frame_mismatch(stub, solution, key):
                    misfits[key] = extra
    assert misfits == {}, "move these lines into the solution's region (or into the lesson's stub)"


@pytest.mark.parametrize("where", ["answer cell", "markdown cell"])
def test_a_release_with_a_solution_line_in_it_is_refused(course, tmp_path, where):
    path, _ = course
    name = "02_validating_certificates_with_requests.ipynb"
    lesson, solutions = assignments.NOTEBOOKS / name, assignments.SOLUTIONS / name
    nb = nbformat.read(path / "release" / "nb02" / name, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    source = answers(path / "source" / "nb02" / name)[answer.metadata["nbgrader"]["grade_id"]]
    lesson_lines = {
        line.strip()
        for c in nbformat.read(lesson, as_version=4).cells
        for line in c.source.splitlines()
    }
    secret = next(line for line in assignments.solution_lines(source) if line not in lesson_lines)
    if where == "answer cell":
        answer.source += f"\n{secret}\n"
        message = "is not the lesson's stub"
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"Psst:\n\n    {secret}"))
        message = "is in the release"
    leaked = tmp_path / name
    nbformat.write(nb, leaked)
    with pytest.raises(assignments.AssignmentError, match=message):
        assignments.verify_release(leaked, lesson, solutions)


def test_solutions_get_full_marks_and_stubs_zero(graded):
    assert set(graded.scores) == set(STUDENTS)
    expected = {
        assignments.grade_id(key)
        for lesson in assignments.lessons(NUMBERS)
        for key in map(assignments.exercise_key, nbformat.read(lesson, as_version=4).cells)
        if key
    }
    for student in STUDENTS:
        assert set(graded.scores[student]) == expected, student
    assert all(score == 1 for score in graded.scores["solutions"].values()), graded.scores[
        "solutions"
    ]
    assert all(score == 0 for score in graded.scores["stubs"].values()), graded.scores["stubs"]
    by_student = {s: [r for r in graded.totals if r["student_id"] == s] for s in STUDENTS}
    assert len(by_student["solutions"]) == len(NUMBERS) == len(by_student["stubs"])
    for row in by_student["solutions"]:
        assert float(row["score"]) == float(row["max_score"]) >= 2, row
    for row in by_student["stubs"]:
        assert float(row["score"]) == 0 and float(row["max_score"]) >= 2, row


def test_every_grade_is_the_checks_own_verdict(graded):
    for student in STUDENTS:
        for submission in sorted((graded.course / "submitted" / student).glob("nb*/*.ipynb")):
            for gid, source in answers(submission).items():
                passed = verdict(gid, source)
                assert graded.scores[student][gid] == (1 if passed else 0), (student, gid, passed)


def test_autograded_notebooks_run_clean_and_stubs_read_not_attempted(graded):
    for notebook in sorted((graded.course / "autograded" / "solutions").glob("nb*/*.ipynb")):
        errors = [
            (o.get("ename"), o.get("evalue"))
            for c in nbformat.read(notebook, as_version=4).cells
            for o in c.get("outputs", [])
            if o.output_type == "error"
        ]
        assert errors == [], f"{notebook.name} (solved) has errors: {errors}"
    for notebook in sorted((graded.course / "autograded" / "stubs").glob("nb*/*.ipynb")):
        cells = nbformat.read(notebook, as_version=4).cells
        for cell in cells:
            errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
            if cell.metadata.get("nbgrader", {}).get("grade"):
                assert [(e.ename, "not attempted yet" in e.evalue) for e in errors] == [
                    ("AssertionError", True)
                ], (
                    notebook.name,
                    cell.metadata["nbgrader"]["grade_id"],
                    [(e.ename, e.evalue) for e in errors],
                )
            else:
                assert errors == [], (notebook.name, [(e.ename, e.evalue) for e in errors])


def test_release_collect_autograde_feedback_through_the_exchange(env, tmp_path, pytestconfig):
    """The teacher's guide, command for command, for one student and one assignment.

    With SimpleLocalProcessSpawner every student is the same OS user, so the student's commands
    name the student (``--student carol``); real per-user accounts make that unnecessary.
    """
    course, exchange, home = tmp_path / "course", tmp_path / "exchange", tmp_path / "carol"
    exchange.mkdir(mode=0o777)
    exchange.chmod(0o777)
    home.mkdir()
    run = Run()
    generate(course, ["02"], env, run)
    ex = f"--Exchange.root={exchange}"
    student = ["--course", COURSE_ID, ex]
    run("release_assignment", nbgrader("release_assignment", "nb02", ex), env, course)
    run("fetch_assignment", nbgrader("fetch_assignment", "nb02", *student), env, home)
    fetched = home / "nb02" / "02_validating_certificates_with_requests.ipynb"
    nb = nbformat.read(fetched, as_version=4)
    solved = answers(course / "source" / "nb02" / fetched.name)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = without_markers(solved[meta["grade_id"]])
    nbformat.write(nb, fetched)
    run("submit", nbgrader("submit", "nb02", *student, "--student", "carol"), env, home)
    run("collect", nbgrader("collect", "nb02", ex), env, course)
    assert (course / "submitted" / "carol" / "nb02" / fetched.name).is_file()
    record = tmp_path / "guard.jsonl"
    autograde = offline(nbgrader("autograde", "nb02", "--student", "carol", "--create"))
    run("autograde", autograde, recorded(env, record), course)
    assert guard_record(record) == (1, [])
    run(
        "generate_feedback",
        nbgrader("generate_feedback", "nb02", "--student", "carol"),
        env,
        course,
    )
    run(
        "release_feedback",
        nbgrader("release_feedback", "nb02", "--student", "carol", ex),
        env,
        course,
    )
    run(
        "fetch_feedback",
        nbgrader("fetch_feedback", "nb02", *student, "--student", "carol"),
        env,
        home,
    )
    feedback = list(
        (home / "nb02" / "feedback").glob("*/02_validating_certificates_with_requests.html")
    )
    assert len(feedback) == 1, list((home / "nb02").rglob("*"))
    assert "Score: 3.0 / 3.0" in feedback[0].read_text()
    run("export", nbgrader("export", "--to", str(course / "grades.csv")), env, course)
    with open(course / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["assignment"], r["student_id"], float(r["score"])) for r in rows] == [
        ("nb02", "carol", 3.0)
    ]
    reporting.report(
        pytestconfig,
        [
            "nbgrader exchange, nb02 for carol: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in run.times.items())
        ],
    )
