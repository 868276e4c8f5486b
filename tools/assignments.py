"""Generate the student versions of every lesson with nbgrader (``make assignments``).

What a teacher gets
-------------------
``build/assignments/`` is an nbgrader *course directory* (course id ``tls-course``, from
``classroom/nbgrader_config.py``, copied there as ``nbgrader_config.py``):

* ``source/nbNN/NN_slug.ipynb``: the instructor's version, made here from the lesson and its
  solutions notebook;
* ``release/nbNN/NN_slug.ipynb``: the student's version, made by nbgrader's
  ``generate_assignment`` (solutions cleared, test cells locked, checksums recorded);
* ``gradebook.db``: nbgrader's gradebook, where the assignments and later the grades live.

Every teacher command of ``docs/teaching.md`` ("Handing out and grading with nbgrader") runs
from that folder: ``nbgrader release_assignment nb02``, ``collect``, ``autograde``, ...

How a source notebook is made
-----------------------------
nbgrader needs two kinds of cells, which the course's notebooks do not carry as such:

* an **answer cell** (``nbgrader.solution``, ``grade_id`` ``nbNN-name``): the lesson's stub
  with its ``raise NotImplementedError`` line replaced by the solution's ``### BEGIN
  SOLUTION`` / ``### END SOLUTION`` region. nbgrader replaces that region by ``raise
  NotImplementedError`` (``ClearSolutions.code_stub``), so the student gets exactly the
  lesson's stub, which :func:`verify_release` checks cell by cell;
* a **test cell** (``nbgrader.grade`` + ``locked``, 1 point, ``grade_id`` ``nbNN-name-check``):
  nbgrader gives the points when the cell runs without an exception. The course's
  ``check()`` *never* raises (so "Run all" always reaches the end of a lesson), so the test
  cell asserts on its result: a stub would otherwise get full marks.

The source is built from the **lesson** (prose, demonstrations, the ``hint()`` cells); of
``notebooks/solutions/`` only each exercise's marked region is used, so a region must not need
anything its cell has outside it that the stub lacks (:func:`frame_mismatch` warns). The
solutions notebook is never used whole: its title cell quotes the ``### BEGIN SOLUTION``
marker in prose, and nbgrader refuses a marker outside an answer cell.

Run it with the classroom venv's Python, which has nbgrader (``make assignments``); its
``bin`` must be on ``PATH``, because nbgrader's gradebook runs ``alembic`` as a command. All
assignments are generated in this one process through nbgrader's API (a CLI call per
notebook would cost two seconds of start-up each).

usage: python -m tools.assignments [--course-dir DIR] [NN ...]     generate (all, or lessons NN)
       python -m tools.assignments --grades [--json] [--course-dir DIR]   scores per exercise
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
CONFIG = ROOT / "classroom" / "nbgrader_config.py"
COURSE_DIR = ROOT / "build" / "assignments"

TAG = "exercise:"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
#: What a lesson's stub raises, and what nbgrader puts in place of a solution (the config's
#: ``ClearSolutions.code_stub``).
STUB = "raise NotImplementedError"
#: nbgrader's cell metadata schema (nbgrader 0.9).
SCHEMA = 3
#: nbgrader's rule for grade ids: ``^[a-zA-Z0-9_\-]*$`` (so ``nb02.x`` becomes ``nb02-x``).
GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]+$")


class AssignmentError(Exception):
    """A lesson or a release is not what nbgrader or the course expects (one sentence)."""


# --- the source notebooks -------------------------------------------------------------------


def lessons(numbers: Iterable[str] = ()) -> list[Path]:
    """The lessons ``notebooks/NN_*.ipynb``, all of them or those numbered ``numbers``."""
    wanted = {n.zfill(2) for n in numbers}
    return [
        p
        for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
        if not wanted or p.name[:2] in wanted
    ]


def assignment_id(lesson: Path) -> str:
    """``03_inspecting_certificates.ipynb`` -> ``nb03``, like the exercises' modules."""
    return f"nb{lesson.name[:2]}"


def exercise_key(cell: nbformat.NotebookNode) -> str | None:
    """``nb02.verify_code_of`` for a cell tagged ``exercise:nb02.verify_code_of``, else None."""
    for tag in cell.get("metadata", {}).get("tags", []):
        if tag.startswith(TAG):
            return tag[len(TAG) :]
    return None


def grade_id(key: str) -> str:
    """The exercise's nbgrader id: ``nb02.verify_code_of`` -> ``nb02-verify_code_of``."""
    gid = key.replace(".", "-")
    if not GRADE_ID.match(gid):
        raise AssignmentError(
            f"exercise {key!r} makes the grade id {gid!r}, which nbgrader refuses."
        )
    return gid


def check_line(key: str) -> str:
    """The line every exercise cell ends with: ``nb02.verify_code_of.check(verify_code_of)``."""
    module, name = key.split(".")
    return f"{module}.{name}.check({name})"


def split_check(source: str, key: str) -> str:
    """An exercise cell's code without its final ``check()`` line (the answer cell's source)."""
    lines = source.rstrip().splitlines()
    if not lines or lines[-1].strip() != check_line(key):
        raise AssignmentError(f"the cell of {key} must end with `{check_line(key)}`.")
    return "\n".join(lines[:-1]).rstrip() + "\n"


def solution_region(solution: str, key: str) -> list[str]:
    """The lines of a solution from ``### BEGIN SOLUTION`` to ``### END SOLUTION``, both included."""
    lines = solution.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() in (BEGIN, END)]
    if [lines[i].strip() for i in marks] != [BEGIN, END]:
        raise AssignmentError(f"the solution of {key} must have one {BEGIN} and one {END} line.")
    return lines[marks[0] : marks[1] + 1]


def answer_source(stub: str, solution: str, key: str) -> str:
    """The answer cell: the lesson's stub with its ``raise NotImplementedError`` line replaced by
    the solution's marked region.

    nbgrader turns the region back into ``raise NotImplementedError`` at the marker's
    indentation, so the student gets the lesson's stub byte for byte, even where the solutions
    notebook arranges the code around the region differently (its imports inside the function,
    say). The graded solution is the region, in the stub's frame.
    """
    lines = stub.splitlines()
    at = [i for i, line in enumerate(lines) if line.strip() == STUB]
    if len(at) != 1:
        raise AssignmentError(f"the lesson's stub of {key} must have exactly one `{STUB}` line.")
    region = solution_region(solution, key)
    indent = lines[at[0]][: len(lines[at[0]]) - len(lines[at[0]].lstrip())]
    if not region[0].startswith(indent) or region[0][len(indent)] == " ":
        raise AssignmentError(
            f"the solution of {key} must open its region at the stub's indentation."
        )
    return "\n".join(lines[: at[0]] + region + lines[at[0] + 1 :]).rstrip() + "\n"


def frame_mismatch(stub: str, solution: str, key: str) -> list[str]:
    """The lines a solution has outside its marked region that the lesson's stub lacks.

    The graded answer is the region *in the stub's frame*, so the region must not depend on
    anything else of the solution's cell (an ``import datetime`` above the function, say): the
    student's notebook would not have it, and the reference solution would fail its own test.
    """
    lines = solution.splitlines()
    region = solution_region(solution, key)
    start = next(i for i, line in enumerate(lines) if line.strip() == BEGIN)
    frame = lines[:start] + lines[start + len(region) :]
    have = {line.strip() for line in stub.splitlines()}
    return [line.strip() for line in frame if line.strip() and line.strip() not in have]


def test_source(key: str) -> str:
    """The locked test cell: show the check's verdict, and fail (no points) unless it passed."""
    return f"result = {check_line(key)}\ndisplay(result)\nassert result, result.message"


def _nbgrader(*, solution: bool, grade: bool, gid: str, points: int | None = None) -> dict:
    meta = {
        "solution": solution,
        "grade": grade,
        "locked": grade,
        "grade_id": gid,
        "schema_version": SCHEMA,
    }
    if points is not None:
        meta["points"] = points
    return meta


def source_notebook(lesson: Path, solutions: Path) -> nbformat.NotebookNode:
    """The instructor's version of one lesson, with nbgrader metadata on the exercise cells.

    Every cell of the lesson is kept, with its id; each exercise cell becomes an answer cell
    (the lesson cell's id, :func:`answer_source`) followed by a test cell (id ``<id>-check``).
    """
    nb = nbformat.read(lesson, as_version=4)
    solved = {
        exercise_key(c): c for c in nbformat.read(solutions, as_version=4).cells if exercise_key(c)
    }
    cells = []
    for cell in nb.cells:
        key = exercise_key(cell)
        if key is None:
            cells.append(cell)
            continue
        if key not in solved:
            raise AssignmentError(f"{lesson.name}: {key} has no solution in {solutions.name}.")
        stub, solution = split_check(cell.source, key), split_check(solved[key].source, key)
        for line in frame_mismatch(stub, solution, key):
            print(
                f"warning: {solutions.name}: the solution of {key} has `{line}` outside its "
                f"{BEGIN} region, and the lesson's stub does not: move it into the region.",
                file=sys.stderr,
            )
        body = answer_source(stub, solution, key)
        gid = grade_id(key)
        answer = nbformat.v4.new_code_cell(body)
        answer.metadata = {
            "tags": list(cell.metadata.get("tags", [])),
            "nbgrader": _nbgrader(solution=True, grade=False, gid=gid),
        }
        test = nbformat.v4.new_code_cell(test_source(key))
        test.metadata = {
            "nbgrader": _nbgrader(solution=False, grade=True, gid=f"{gid}-check", points=1)
        }
        if "id" in cell:
            answer.id, test.id = cell.id, f"{cell.id}-check"[:64]
        cells += [answer, test]
    nb.cells = cells
    return nb


def write_sources(course: Path, paths: list[Path]) -> list[str]:
    """Write ``source/nbNN/NN_slug.ipynb`` for each lesson; returns the assignment ids."""
    ids = []
    for lesson in paths:
        aid = assignment_id(lesson)
        out = course / "source" / aid / lesson.name
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(lesson, SOLUTIONS / lesson.name), out)
        ids.append(aid)
    return ids


# --- the release, checked --------------------------------------------------------------------


def solution_lines(source: str) -> list[str]:
    """The code lines between the solution markers (stripped, blank lines and comments too)."""
    inside, found = False, []
    for line in source.splitlines():
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif inside and line.strip():
            found.append(line.strip())
    return found


def verify_release(release: Path, lesson: Path, solutions: Path) -> int:
    """Check that a released notebook gives nothing away; returns its number of exercises.

    * each answer cell is exactly the lesson's stub (minus its ``check()`` line), each test cell
      the strict check; the ``hint()`` cells are there;
    * no cell holds a solution marker, and no line of a solution appears anywhere in the
      release unless the lesson itself has it (an ``import``, a ``return`` the stub shows).
    Raises :class:`AssignmentError` with the first problem found.
    """
    nb = nbformat.read(release, as_version=4)
    lesson_nb = nbformat.read(lesson, as_version=4)
    stubs = {exercise_key(c): c.source for c in lesson_nb.cells if exercise_key(c)}
    lesson_lines = {line.strip() for c in lesson_nb.cells for line in c.source.splitlines()}
    answers = {
        c.metadata.get("nbgrader", {}).get("grade_id"): c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    tests = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    for key, stub in stubs.items():
        gid = grade_id(key)
        if answers.get(gid) != split_check(stub, key):
            raise AssignmentError(
                f"{release.name}: the answer cell of {key} is not the lesson's stub."
            )
        if tests.get(f"{gid}-check") != test_source(key):
            raise AssignmentError(f"{release.name}: the test cell of {key} is missing or changed.")
        if not any(c.source.strip() == f"{key}.hint()" for c in nb.cells):
            raise AssignmentError(f"{release.name}: the hint cell of {key} is missing.")
    text = "\n".join(c.source for c in nb.cells)
    if "BEGIN SOLUTION" in text or "END SOLUTION" in text:
        raise AssignmentError(f"{release.name}: a solution marker is left in the release.")
    released_lines = {line.strip() for line in text.splitlines()}
    for cell in nbformat.read(solutions, as_version=4).cells:
        for line in solution_lines(cell.source):
            if line not in lesson_lines and line in released_lines:
                raise AssignmentError(
                    f"{release.name}: the solution line {line!r} is in the release."
                )
    return len(stubs)


# --- nbgrader ---------------------------------------------------------------------------------


def course_config(course: Path, *, install: bool = False):  # -> traitlets.config.Config
    """The course directory's ``nbgrader_config.py``; ``install``: copy it from ``classroom/`` first
    (``make assignments`` does: edit ``classroom/nbgrader_config.py``, not the copy)."""
    from traitlets.config.loader import PyFileConfigLoader

    if install:
        shutil.copyfile(CONFIG, course / "nbgrader_config.py")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    return config


def _need_alembic() -> None:
    # nbgrader's gradebook runs `alembic` as a command; without it the first database access
    # fails half-way and leaves a gradebook.db nbgrader cannot use again.
    if shutil.which("alembic") is None:
        raise AssignmentError(
            "nbgrader needs the `alembic` command on PATH: run this with the classroom venv's bin "
            "first on PATH (make assignments does)."
        )


def generate(course: Path, numbers: Iterable[str] = ()) -> dict[str, int]:
    """Write the sources and let nbgrader generate every release; returns exercises per assignment."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _need_alembic()
    paths = lessons(numbers)
    if not paths:
        raise AssignmentError(f"no lesson numbered {' '.join(numbers)} in {NOTEBOOKS}.")
    course.mkdir(parents=True, exist_ok=True)
    config = course_config(course, install=True)
    ids = write_sources(course, paths)
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    counts = {}
    for aid, lesson in zip(ids, paths, strict=True):
        result = api.generate_assignment(aid, force=True)
        if not result["success"]:
            raise AssignmentError(
                f"nbgrader could not generate {aid}:\n{result.get('error') or result.get('log')}"
            )
        counts[aid] = verify_release(
            course / "release" / aid / lesson.name, lesson, SOLUTIONS / lesson.name
        )
    return counts


def grades(course: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Every autograded score, per exercise: ``{student: {"nb02-verify_code_of": 1.0, ...}}``.

    ``nbgrader export`` writes one total per assignment; a teacher who wants to know which
    exercise the room found hard needs the test cells' scores, which the gradebook keeps.
    """
    from nbgrader.api import Gradebook

    config = course_config(course)
    scores: dict[str, dict[str, float]] = {}
    with Gradebook(
        f"sqlite:///{course / 'gradebook.db'}", course_id=config.CourseDirectory.course_id
    ) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                mine = scores.setdefault(submission.student.id, {})
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        mine[grade.name.removesuffix("-check")] = grade.score
    return {student: dict(sorted(s.items())) for student, s in sorted(scores.items())}


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "numbers", nargs="*", metavar="NN", help="lessons to generate (default: all)"
    )
    parser.add_argument(
        "--course-dir",
        type=Path,
        default=COURSE_DIR,
        help=f"default: {COURSE_DIR.relative_to(ROOT)}",
    )
    parser.add_argument(
        "--grades", action="store_true", help="print the autograded scores per exercise"
    )
    parser.add_argument("--json", action="store_true", help="with --grades: print JSON")
    args = parser.parse_args(argv)
    course = args.course_dir.resolve()
    try:
        if args.grades:
            table = grades(course)
            if args.json:
                print(json.dumps(table, indent=1))
            for student, scores in [] if args.json else table.items():
                print(
                    f"{student}: {sum(scores.values()):g}/{len(scores)}  "
                    + " ".join(f"{k}={v:g}" for k, v in scores.items())
                )
            return 0
        start = time.monotonic()
        counts = generate(course, args.numbers)
    except AssignmentError as exc:
        print(f"make assignments: {exc}", file=sys.stderr)
        return 1
    for aid, n in counts.items():
        print(f"{aid}: {n} exercises, {n} points, no solution in release/{aid}/")
    print(
        f"{len(counts)} assignments in {course} ({time.monotonic() - start:.1f} s); course id and settings: nbgrader_config.py there"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
