# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap first (CPython >= 3.12,
# Debian packages, .venv); a second run reuses every cache.
VENV  := .venv
BUILD := build
CMAKE := $(VENV)/bin/cmake
CTEST := $(VENV)/bin/ctest

.PHONY: all bootstrap peers configure build build-cpp build-python test test-cpp test-python demo demo-cpp bench clean

all: build

bootstrap:
	@bash tools/bootstrap.sh

# Optional peers for `manygil bench`: a free-threaded build of the same CPython (about 3 min, cached).
peers:
	@MANYGIL_FREE_THREADED=1 bash tools/bootstrap.sh

$(BUILD)/CMakeCache.txt: | bootstrap
	@$(CMAKE) -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMANYGIL_WERROR=ON \
	    -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) -DPython_EXECUTABLE=$(abspath $(VENV)/bin/python) \
	    > $(BUILD).configure.log || (cat $(BUILD).configure.log; exit 1)
	@echo "[build] configured $(BUILD)/ (log: $(BUILD).configure.log)"

configure: bootstrap $(BUILD)/CMakeCache.txt

build: build-cpp build-python

build-cpp: configure
	@$(CMAKE) --build $(BUILD)

# The Python package, through the same path a user takes (pip install . with scikit-build-core),
# into .venv; its CMake tree (build/py) is kept, so a rebuild is incremental.
build-python: bootstrap
	@PATH="$(abspath $(VENV)/bin):$$PATH" $(VENV)/bin/python -m pip install --no-build-isolation --no-deps \
	    --disable-pip-version-check . > $(BUILD).pip.log 2>&1 || (tail -40 $(BUILD).pip.log; exit 1)
	@echo "[build] installed the manygil package into $(VENV) (log: $(BUILD).pip.log)"

test-cpp: build-cpp
	@$(CTEST) --test-dir $(BUILD) --output-on-failure -j2

test-python: build-python
	@$(VENV)/bin/python -m pytest -q tests/python

test: test-cpp test-python

# The main job: pure-Python workloads on every execution model, side by side (quick settings).
demo: build-python
	@$(VENV)/bin/manygil bench --quick

# The C++ runtime alone: the same work on 1 and on N workers from a C++ host.
demo-cpp: build-cpp
	@$(BUILD)/examples/manygil_speedup

# The full comparison (a few minutes), then the issue-specific micro-benchmarks.
bench: build-python
	@$(VENV)/bin/manygil bench --json $(BUILD)/bench.json --plot $(BUILD)/bench.png
	@$(VENV)/bin/python bench/executor_overhead.py
	@$(VENV)/bin/python bench/data_plane.py

clean:
	rm -rf $(BUILD) $(BUILD).configure.log $(BUILD).pip.log
