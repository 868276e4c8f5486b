"""nbgrader's settings for this course (docs/teaching.md, "Handing out and grading with nbgrader").

``make assignments`` copies this file into the course directory, ``build/assignments/``, as
``nbgrader_config.py``: run every teacher command (``nbgrader release_assignment nb02``,
``collect``, ``autograde``, ``generate_feedback``, ``export``) from that folder, and nbgrader
reads it from there. ``CourseDirectory.root`` is therefore left at its default, the current
directory.
"""

c = get_config()  # noqa: F821 (traitlets defines get_config() while it reads this file)

# The course's id: the exchange keeps each course's assignments under it, and students name
# it when they fetch and submit (--course tls-course).
c.CourseDirectory.course_id = "tls-course"

# A released answer cell is the solution with its `### BEGIN SOLUTION` ... `### END SOLUTION`
# region replaced by this stub: exactly the stub of the lesson, so the student meets the same
# `raise NotImplementedError` (and the check's "not attempted yet") as in notebooks/.
# nbgrader's default adds a "# YOUR CODE HERE" line.
c.ClearSolutions.code_stub = {"python": "raise NotImplementedError"}

# Autograding runs the whole notebook, demonstrations included, in a fresh kernel. nbgrader
# gives a cell 30 s by default; a room's worth of autograding on a small machine can come close
# (a check may start a server and do several handshakes), and a timeout costs the student the
# points of every later cell.
c.Execute.timeout = 120

# Where assignments and submissions are exchanged between teacher and students: one folder on
# the machine that serves the hub, writable by everyone (chmod 777, as nbgrader documents it).
# This is nbgrader's default, written out so a teacher sees where to change it.
c.Exchange.root = "/srv/nbgrader/exchange"
