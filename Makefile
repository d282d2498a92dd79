# pcca_plugin: the two commands a newcomer needs are `make demo` and `make test`;
# both install what they need first (`make setup`, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pcca_setup_stamp
# pinned versions every `pip install` of the setup is held to
CONSTRAINTS ?= requirements/constraints.txt
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup test demo demo-quick lint format clean

$(STAMP): setup.py tools/setup_env.sh $(CONSTRAINTS)
	PCCA_VENV=$(VENV) PCCA_CONSTRAINTS=$(CONSTRAINTS) bash tools/setup_env.sh
	touch $(STAMP)

## setup: create .venv with the pinned stack (pip -c $(CONSTRAINTS); mmcv wheel built once,
## cached per torch / CUDA / FORCE_CUDA / Python, sha256-checked before it is installed)
setup:
	PCCA_VENV=$(VENV) PCCA_CONSTRAINTS=$(CONSTRAINTS) bash tools/setup_env.sh
	touch $(STAMP)

## test: the whole test suite (installs first if needed)
test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

## demo: the main job on generated toy-sports data (installs first if needed)
demo: $(STAMP)
	$(PY) tools/run_demo.py $(DEMO_ARGS)

demo-quick: $(STAMP)
	$(PY) tools/run_demo.py --quick $(DEMO_ARGS)

## lint: ruff check + ruff format --check over everything
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
