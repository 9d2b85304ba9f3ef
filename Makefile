# Set-up lives here so that a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch that installs quickly; any torch 2.x from 2.4 on works:
# `make test TORCH=torch` takes the newest (on Linux that is a multi-GB CUDA build).
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo lint test test-fast browser bench bench-lessons bench-baselines bench-quakes \
	bench-tabular bench-memory clean

install: $(STAMP)

# With the extras that read ROOT, HDF5 and FITS files (fcnn[all]), so that their tests run.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,all,onnx]'
	touch $@

# The main job: simulate -> train -> evaluate -> predict on the default earthquake data.
demo: install
	mkdir -p demo
	$(BIN)/fcnn simulate earthquakes -o demo/quakes.parquet
	$(BIN)/fcnn train demo/quakes.parquet -o demo/run --force
	$(BIN)/fcnn simulate earthquakes -n 2000 --seed 1 -o demo/test.csv
	$(BIN)/fcnn evaluate demo/run/model.pt demo/test.csv
	$(BIN)/fcnn predict demo/run/model.pt sample_data/quakes.csv --keep x,y -o demo/predictions.csv
	head -5 demo/predictions.csv

# The wings' layers (the import-linter contract in pyproject.toml) and ruff's bug-finding rules,
# before the tests: an import against the layers fails here.
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check

test: install browser lint
	$(BIN)/python -m pytest -q

# Chromium for the test that lays the report page out in a browser: installed with apt-get
# on Debian when root and missing; anywhere else that test is skipped, and nothing fails.
browser:
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ] || \
		{ echo "installing chromium (apt-get) for the report page's browser test"; \
		  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		  >/dev/null; } || true
	@command -v chromium >/dev/null || echo "no chromium: the report page's browser test is skipped"

# Everything but the tests marked slow.
test-fast: install lint
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) demo runs .pytest_cache *.egg-info

# Speed side by side with the peers (about 2 minutes on 2 cores; prints one table and writes
# bench/speed.json), whole commands in phases (bench/startup.py, about 2 minutes), then beside a
# busy neighbour (a few minutes; one more table). Run it alone: another busy process skews every
# figure.
bench: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check scikit-learn
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/shared_nodes.py

# The deep-network, galaxy-noise and small-table tables of docs/ (about 6 minutes).
bench-lessons: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check scikit-learn
	$(BIN)/python bench/small_tables.py
	$(BIN)/python bench/deep_networks.py
	$(BIN)/python bench/galaxy_noise.py

# Gradient-boosted trees beside the network (about 2 minutes): scikit-learn's, XGBoost's and
# LightGBM's, installed here to be measured (only scikit-learn is an extra of fcnn, gbdt).
bench-baselines: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check scikit-learn xgboost-cpu \
		lightgbm
	$(BIN)/python bench/baselines.py

# The network against the classical locator (true and 10 % slower crust) on the lecture's
# earthquakes and three realistic cases (under 10 minutes alone on 2 cores).
bench-quakes: install
	$(BIN)/python bench/quakes.py

# fcnn beside scikit-learn's MLP, HistGradientBoosting, LightGBM and RealMLP on the tables of
# bench/tabular_tables.py, five seeds each (docs/speed.md); the peers are the extra fcnn[bench],
# installed here to be measured, never needed by the tool. `--quick` for a small subset.
bench-tabular: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python bench/tabular.py

# Peak memory and samples/s of train on 1 M, 10 M and 50 M rows, in memory and --stream, and the
# test mean distance of both (long: the 50 M-row table alone is 5 GB on disk while it runs).
bench-memory: install
	$(BIN)/python bench/memory.py
