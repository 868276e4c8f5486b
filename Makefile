# Two commands from a fresh clone:
#   make lab    set everything up, then open JupyterLab on notebook 00
#   make test   set everything up, then run every test (notebooks included)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JUPYTER_PORT ?= 8888
JUPYTER_ARGS ?=
PYTEST_ARGS  ?=
# JupyterLab refuses to run as root unless told; containers and CI often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup lab test lint html nav bench serve-lab clean

# The install runs again only when pyproject.toml or constraints.txt change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(JUPYTER_PORT) $(ROOT_FLAG) \
		$(JUPYTER_ARGS) notebooks/00_start_here.ipynb

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check helpers tests notebooks bench tools

html: setup
	$(BIN)/python -m tools.render_html

nav: setup
	$(BIN)/python -m tools.navigation

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# For a teacher: serve every lab scenario to the room (see docs/teaching.md).
serve-lab: setup
	$(BIN)/python -m helpers.lab $(LAB_ARGS)

clean:
	rm -rf build .pytest_cache .ruff_cache
