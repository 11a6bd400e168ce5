# The two commands a fresh machine needs (see README.md):
#   make lab    set up .venv and launch JupyterLab on notebooks/
#   make test   set up .venv and run every test: unit tests, nbval over all notebooks, the browser test
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The torch build the course is tested and benchmarked with; any torch>=2.2 works (make test TORCH=torch).
TORCH  ?= torch==2.13.0

.PHONY: lab test unit notebooks bench browser-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[lab,dev]"
	touch $@

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks/

# The browser test drives Debian's Chromium; elsewhere Playwright's own Chromium is used.
browser-deps: $(VENV)/.installed
	@if command -v chromium >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else $(PY) -m playwright install chromium; fi

# LINFORMER_EDU_QUICK=1 shrinks the heavy parts of notebooks so each runs in about a minute on a CPU.
# pytest exits 5 when it collected no tests: that is a broken suite, never a pass.
test: $(VENV)/.installed browser-deps
	LINFORMER_EDU_QUICK=1 $(PY) -m pytest -q; rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; exit $$rc

unit: $(VENV)/.installed
	LINFORMER_EDU_QUICK=1 $(PY) -m pytest -q tests -m "not browser"

# Re-run every notebook top to bottom at full size and store its outputs (what GitHub and Colab show).
notebooks: $(VENV)/.installed
	$(PY) tools/run_notebooks.py notebooks/*.ipynb

bench: $(VENV)/.installed
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) test-artifacts
