# Two commands from a fresh clone:
#   make lab    set everything up, then open JupyterLab on notebook 00
#   make test   (contributors) set everything up, then run every test (notebooks included)
#   make test-matrix [CELLS=trixie]   (contributors, root) the suite in each Python x OpenSSL
#               environment CI tests: Debian roots made with debootstrap (tools/matrix.sh)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JUPYTER_PORT ?= 8888
JUPYTER_ARGS ?=
PYTEST_ARGS  ?=
CELLS        ?=
# JupyterLab refuses to run as root unless told; containers and CI often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# The classroom (make hub, make assignments): JupyterHub and nbgrader in their own venv, never in
# .venv (nbgrader's extensions would load in every learner's `make lab`). CLASSROOM_BIN is its bin.
CLASSROOM_VENV  := build/classroom/venv
CLASSROOM_BIN   := $(CLASSROOM_VENV)/bin
CLASSROOM_STAMP := $(CLASSROOM_VENV)/.installed

.PHONY: setup classroom-venv hub hub-stop assignments lab test test-matrix lint html nav bench serve-lab clean

# The install runs again only when pyproject.toml or constraints.txt change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

$(CLASSROOM_STAMP): pyproject.toml constraints.txt
	test -x $(CLASSROOM_BIN)/python || $(PYTHON) -m venv $(CLASSROOM_VENV)
	$(CLASSROOM_BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[classroom]'
	touch $(CLASSROOM_STAMP)

classroom-venv: $(CLASSROOM_STAMP)

# configurable-http-proxy (Node) for the hub, from the npm registry into classroom/node_modules.
CHP := classroom/node_modules/.bin/configurable-http-proxy
$(CHP): classroom/package.json classroom/package-lock.json
	@command -v npm >/dev/null || { echo "make hub needs Node.js 20+ and npm (configurable-http-proxy): apt-get install nodejs npm"; exit 1; }
	npm ci --prefix classroom --no-audit --no-fund --loglevel=error
	touch $(CHP)

# A JupyterHub for a room on http://127.0.0.1:$(HUB_PORT)/ (docs/teaching.md): Ctrl-C stops the hub,
# every student's server, the proxy and the shared lab. HUB_ARGS="--lab JOIN_URL" reuses a lab.
# HUB_BACKGROUND=1: start in the background (log in build/classroom/hub/hub.log); make hub-stop.
HUB_PORT ?= 8000
HUB_ARGS ?=
hub: $(CLASSROOM_STAMP) $(CHP)
	$(CLASSROOM_BIN)/python classroom/hubctl.py $(if $(HUB_BACKGROUND),start,run) --port $(HUB_PORT) $(HUB_ARGS)

hub-stop:
	$(CLASSROOM_BIN)/python classroom/hubctl.py stop

# The server's root is the repository (so helpers/*.py open in JupyterLab too); notebook 00 opens first.
lab: setup
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(JUPYTER_PORT) --ServerApp.root_dir=. \
		$(ROOT_FLAG) $(JUPYTER_ARGS) notebooks/00_start_here.ipynb

# tests/test_hub.py needs the classroom venv and the proxy, unless the run deselects it
# (tools/matrix.sh's Debian roots: no npm there, and their `make test` runs offline).
test: setup $(if $(findstring not classroom,$(PYTEST_ARGS)),,$(CLASSROOM_STAMP) $(CHP))
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every cell by default (reference trixie bookworm forky forky-py3.15); roots cached in build/matrix/.
test-matrix:
	tools/matrix.sh $(CELLS)

lint: setup
	$(BIN)/ruff check helpers tests notebooks bench tools classroom

html: setup
	$(BIN)/python -m tools.render_html

nav: setup
	$(BIN)/python -m tools.navigation

bench: setup $(CLASSROOM_STAMP) $(CHP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# For a teacher: serve every lab scenario to the room (see docs/teaching.md).
serve-lab: setup
	$(BIN)/python -m helpers.lab $(LAB_ARGS)

# For a teacher: every lesson's student version, made by nbgrader, in build/assignments/ (an
# nbgrader course directory; docs/teaching.md). nbgrader's gradebook runs `alembic`: hence PATH.
assignments: classroom-venv
	PATH="$(CURDIR)/$(CLASSROOM_BIN):$$PATH" $(CLASSROOM_BIN)/python -m tools.assignments $(ASSIGNMENTS)

# Never rm -rf a tree with something mounted in it (tools/matrix.sh mounts only in private
# namespaces, but check anyway).
clean:
	@if findmnt -rn -o TARGET 2>/dev/null | grep -qF "$(CURDIR)/build/"; then \
		echo "something is mounted under build/: not removing it (findmnt | grep build)"; exit 1; fi
	rm -rf build .pytest_cache .ruff_cache
