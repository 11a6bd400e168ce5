# The two commands a fresh machine needs (see README.md):
#   make lab    set up .venv and launch JupyterLab on notebooks/ (extra JupyterLab arguments: make lab ARGS="--port 8889")
#   make test   set up .venv and .venv-colab and run every test: unit tests, nbval over all notebooks, the browser
#               test, and the Colab install cell in an environment holding Colab's versions
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The torch build the course is tested and benchmarked with; any torch>=2.3 works (make test TORCH=torch).
TORCH  ?= torch==2.13.0
# Extra arguments for JupyterLab (make lab ARGS="--port 8889"); as root, as in a container, it needs --allow-root.
ARGS   ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
# An environment holding what Colab has preinstalled (issue 13): ipywidgets 7.7.1 (with widgetsnbextension 3.6),
# matplotlib 3.10, einops 0.8, tqdm 4.67, and .venv's torch standing in for Colab's CUDA build.
# tests/test_colab.py runs the notebooks' install cell and the explorer's tests in it. notebook<7: the classic
# notebook that widgetsnbextension 3.6 extends, without the JupyterLab that notebook 7 would bring.
COLAB_VENV ?= .venv-colab
COLAB_PINS := ipywidgets==7.7.1 "matplotlib==3.10.*" "einops==0.8.*" "tqdm==4.67.*" "notebook<7"
COLAB_PY   := $(COLAB_VENV)/bin/python

.PHONY: lab test unit notebooks bench gpu-check browser-deps colab-env clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[lab,dev]"
	touch $@

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) $(ARGS) notebooks/

# The browser test drives Debian's Chromium; elsewhere Playwright's own Chromium is used.
browser-deps: $(VENV)/.installed
	@if command -v chromium >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else $(PY) -m playwright install chromium; fi

# torch is hard-linked from .venv (same Python only), which spares a second 700 MB unpack (disk, and about half a
# minute of CPU), and any torch>=2.3 stands in for Colab's; pip then adds torch's own dependencies, or installs
# $(TORCH) if no link was made. The whole step takes about two minutes of CPU, once (a stamp file keeps it).
# wheels/ holds setuptools, so the test's pip builds the package offline (PIP_NO_INDEX), isolated as Colab's would.
$(COLAB_VENV)/.installed: | $(VENV)/.installed
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	src=$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	dst=$$($(COLAB_PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	if [ "$${src##*/lib/}" = "$${dst##*/lib/}" ]; then \
	  cp -al "$$src"/torch "$$src"/functorch "$$src"/torchgen "$$src"/torch-*.dist-info "$$dst"/ 2>/dev/null || \
	  rm -rf "$$dst"/torch "$$dst"/functorch "$$dst"/torchgen "$$dst"/torch-*.dist-info; fi
	$(COLAB_PY) -m pip install --quiet "$(TORCH)" $(COLAB_PINS) pytest
	$(COLAB_PY) -m pip download --quiet --no-deps --dest $(COLAB_VENV)/wheels "setuptools>=77"
	touch $@

colab-env: $(COLAB_VENV)/.installed

# LINFORMER_EDU_QUICK=1 shrinks the heavy parts of notebooks so each runs in about a minute on a CPU.
# pytest exits 5 when it collected no tests: that is a broken suite, never a pass.
# LINFORMER_EDU_COLAB_VENV makes tests/test_colab.py fail, not skip, when that environment is missing.
test: $(VENV)/.installed browser-deps $(COLAB_VENV)/.installed
	LINFORMER_EDU_QUICK=1 LINFORMER_EDU_COLAB_VENV=$(COLAB_VENV) $(PY) -m pytest -q; rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; exit $$rc

unit: $(VENV)/.installed
	LINFORMER_EDU_QUICK=1 $(PY) -m pytest -q tests -m "not browser"

# Re-run every notebook top to bottom at full size and store its outputs (what GitHub and Colab show).
notebooks: $(VENV)/.installed
	$(PY) tools/run_notebooks.py notebooks/*.ipynb

bench: $(VENV)/.installed
	$(PY) benchmarks/run.py

# On a machine with a CUDA GPU (about 5 minutes): the CUDA-only tests, a one-minute gpu-preset training with AMP,
# notebook 07 on CUDA and the CUDA benchmarks; one results file in gpu-check/. Not yet run on real hardware.
gpu-check: $(VENV)/.installed
	$(PY) tools/gpu_check.py --out gpu-check

clean:
	rm -rf $(VENV) $(COLAB_VENV) test-artifacts gpu-check
