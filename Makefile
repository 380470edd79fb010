# Two commands on a fresh machine with only python3: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast bench docs newcomer contract lock clean

# No usage telemetry from MLflow / BentoML: the embedded default runs offline.
export MLFLOW_DISABLE_TELEMETRY = true
export DO_NOT_TRACK = true
export BENTOML_DO_NOT_TRACK = true

# The venv is rebuilt when the lock or the project metadata changes.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/telco-nbo demo --out demo_out

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

# The inner loop: unit and property tests, without what trains models or starts servers (markers
# `slow` / `integration`, declared in pyproject.toml); `make test` runs everything.
test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow and not integration"

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# The notebooks executed (each on its own default world), as HTML with their charts: docs/notebooks/index.html
docs: $(STAMP)
	$(PY) scripts/render_notebooks.py --out docs/notebooks

# The README's commands replayed end to end in a temporary folder (also run by the test suite).
newcomer: $(STAMP)
	TELCO_NBO_BIN=$(VENV)/bin scripts/newcomer.sh

# Contract fuzzing of the scoring API: schemathesis (own venv, pinned) against the real server on
# loopback, bounded (FUZZ_SECONDS, FUZZ_EXAMPLES); fails on any finding.
contract: $(STAMP)
	scripts/contract_fuzz.sh

# Regenerate the lock (needs network and uv): the only way requirements.lock changes.
lock:
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) demo_out mlflow.db optuna.db mlartifacts predictions workspace
