"""JupyterHub for a small TLS course: ``make hub`` (classroom/hubctl.py) runs the hub with this file.

What a student gets: a login page, then their own JupyterLab server started with the course
installed (this checkout's ``helpers`` package and every dependency, from the classroom venv
``build/classroom/venv``), a copy of the lessons in ``~/course`` and JupyterLab opened on notebook
00. Every kernel joins the teacher's one shared lab through ``TLS_COURSE_LAB`` (the join URL with
the lab CA's fingerprint, ``python -m helpers.lab --share``), so twenty students do not start
twenty labs. Lessons, configuration and the lab are introduced in notebooks 00 and 02 and in
docs/teaching.md ("A classroom on JupyterHub").

Choices, and why
----------------
* **Authenticator: FirstUseAuthenticator** (``jupyterhub-firstuseauthenticator``). A small course
  has no university login to delegate to; the first login under a name sets that name's
  password (stored as a bcrypt hash in ``passwords.dbm``), later logins must repeat it. It is The
  Littlest JupyterHub's default for the same reason (https://tljh.jupyter.org/en/latest/howto/auth/firstuse.html).
  NativeAuthenticator (sign-up plus teacher approval) would suit too, but 1.3.0, the newest,
  answers every login with a 500 on JupyterHub 6 (it reads ``LoginHandler.statsd``, removed by
  jupyterhub/jupyterhub#5407). The user ``teacher`` is the hub's admin: log in as ``teacher``
  first, before the room does, so nobody else sets that password. A university course swaps in
  an OAuthenticator (GitHub, Google, a campus OpenID Connect); nothing else here changes.
  ``CLASSROOM_AUTH=dummy`` (any password) exists for demos only; the tests log in through
  FirstUseAuthenticator.
* **Spawner: SimpleLocalProcessSpawner**, here, on loopback: every student's server is a process
  of the user running the hub, with its home under ``build/classroom/.../homes/NAME``. It needs no
  root, no systemd and no Docker, so ``make hub`` works from a fresh clone, on a laptop and in CI.
  It isolates nothing (its own docstring: "DO NOT USE THIS FOR PRODUCTION"): students could read
  each other's files and nbgrader sees one Unix user. For a real room use a spawner with one Unix
  user per student and limits: SystemdSpawner, which is what The Littlest JupyterHub sets up, or
  KubeSpawner with Zero to JupyterHub (docs/teaching.md has both recipes).
* **Loopback by default** (hub, proxy, hub API, lab all on 127.0.0.1): exposing a hub to a network
  means TLS in front of it (``c.JupyterHub.ssl_cert``/``ssl_key``, or TLJH's Let's Encrypt), which
  a course about TLS should not skip.

Settings come from the environment, which ``classroom/hubctl.py`` fills in:
``HUB_PORT`` (the proxy's public port, default 8000), ``CLASSROOM_STATE`` (database, cookie
secret, pid files, homes), ``CLASSROOM_HUB_API_PORT`` / ``CLASSROOM_PROXY_API_PORT`` (internal,
loopback), ``CLASSROOM_AUTH`` (``firstuse`` or ``dummy``), ``CLASSROOM_API_TOKEN`` (optional: a
service token for scripts, bench/hub.py and tests/test_hub.py), ``TLS_COURSE_LAB`` and
``MPLCONFIGDIR`` (one matplotlib font cache built once, instead of one per student: with twelve
students each building their own, the slowest cell took twice as long).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - JupyterHub's config loader provides get_config

ROOT = Path(__file__).resolve().parent.parent  # the course checkout
STATE = Path(os.environ.get("CLASSROOM_STATE", ROOT / "build" / "classroom" / "hub")).resolve()
STATE.mkdir(parents=True, exist_ok=True, mode=0o700)
HOMES = STATE / "homes"
LOOPBACK = "127.0.0.1"

# --- the hub, its proxy and its database: loopback, state under build/
c.JupyterHub.ip = LOOPBACK
c.JupyterHub.port = int(os.environ.get("HUB_PORT", "8000"))
c.JupyterHub.hub_ip = LOOPBACK
c.JupyterHub.hub_port = int(os.environ.get("CLASSROOM_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = (
    f"http://{LOOPBACK}:{os.environ.get('CLASSROOM_PROXY_API_PORT', '8001')}"
)
# configurable-http-proxy from the npm registry, installed into classroom/node_modules by
# `npm ci --prefix classroom` (package-lock.json pins it), never globally.
c.ConfigurableHTTPProxy.command = [
    str(ROOT / "classroom" / "node_modules" / ".bin" / "configurable-http-proxy")
]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every student's server
c.JupyterHub.cleanup_proxy = True

# --- who may log in
ADMIN = os.environ.get("CLASSROOM_ADMIN", "teacher")
c.Authenticator.admin_users = {ADMIN}
c.Authenticator.allow_all = True  # a room: whoever has the hub's address may pick a name
if os.environ.get("CLASSROOM_AUTH", "firstuse") == "dummy":
    c.JupyterHub.authenticator_class = "dummy"  # any password: demos only, never a room
else:
    c.JupyterHub.authenticator_class = "firstuseauthenticator"
    c.FirstUseAuthenticator.dbm_path = str(STATE / "passwords.dbm")
    c.FirstUseAuthenticator.create_users = True
    c.FirstUseAuthenticator.min_password_length = 8

# --- every student's server
c.JupyterHub.spawner_class = "simple"  # jupyterhub.spawner.SimpleLocalProcessSpawner: see above
c.SimpleLocalProcessSpawner.home_dir_template = str(HOMES / "{username}")
# The classroom venv's single-user server: the course and its dependencies are installed there
# (the hub runs from the same venv, so it is next to sys.executable).
c.Spawner.cmd = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
# JupyterLab refuses to run as root unless told (the Makefile's ROOT_FLAG does the same).
c.Spawner.args = ["--allow-root"] if os.getuid() == 0 else []
c.Spawner.notebook_dir = "~/course"
c.Spawner.default_url = "/lab/tree/notebooks/00_start_here.ipynb"
# Twelve servers starting at once on two cores took up to 24 s each (bench/hub.py).
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {
    key: os.environ[key] for key in ("TLS_COURSE_LAB", "MPLCONFIGDIR") if os.environ.get(key)
}

#: What a student's ~/course holds. Not notebooks/solutions (the exercises are graded), not .git.
#: The kernels import ``helpers`` from the classroom venv's install (this checkout), so a student
#: reading helpers/*.py in ~/course reads the code that runs, but editing it changes nothing.
COURSE_FILES = ("README.md", "notebooks", "helpers", "data", "docs")
_SKIP = shutil.ignore_patterns("solutions", "__pycache__", ".ipynb_checkpoints", "*.pyc")


def copy_course(spawner) -> None:  # noqa: ANN001 - a jupyterhub.spawner.Spawner
    """pre_spawn_hook: give a student their own copy of the lessons, once (their edits stay)."""
    course = Path(spawner.home_dir_template.format(username=spawner.user.name)) / "course"
    if course.exists():
        return
    partial = course.with_name(".course-copying")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in COURSE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, partial / name, ignore=_SKIP)
        elif source.is_file():
            shutil.copy2(source, partial / name)
    partial.rename(course)  # all or nothing: a crash mid-copy is redone at the next start


c.Spawner.pre_spawn_hook = copy_course

# --- an API token for scripts (bench/hub.py, tests/test_hub.py): create students, start their
# servers, issue each student a token. Only when one is given; never written to a file here.
if os.environ.get("CLASSROOM_API_TOKEN"):
    c.JupyterHub.services = [
        {"name": "classroom-driver", "api_token": os.environ["CLASSROOM_API_TOKEN"]}
    ]
    c.JupyterHub.load_roles = [
        {
            "name": "classroom-driver",
            "scopes": ["admin:users", "admin:servers", "tokens", "access:servers", "read:users"],
            "services": ["classroom-driver"],
        }
    ]
