# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap first (CPython >= 3.12,
# Debian packages, .venv); a second run reuses every cache.
VENV  := .venv
BUILD := build
CMAKE := $(VENV)/bin/cmake
CTEST := $(VENV)/bin/ctest

.PHONY: tsan bench-ab all bootstrap peers configure build build-cpp build-python check test test-cpp test-python fuzz sanitize demo demo-cpp bench compat-survey cpython-bugs clean

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
	    --disable-pip-version-check --config-settings=cmake.define.MANYGIL_WERROR=ON . \
	    > $(BUILD).pip.log 2>&1 || (tail -40 $(BUILD).pip.log; exit 1)
	@echo "[build] installed the manygil package into $(VENV) (log: $(BUILD).pip.log)"

test-cpp: build-cpp
	@$(CTEST) --test-dir $(BUILD) --output-on-failure -j2

# manygil.duckdb's tests run twice: with the venv's DuckDB (the newest) and with the last 1.x
# (tools/bootstrap.sh installs it into $(VENV)/duckdb-1.x).
DUCKDB_TESTS := tests/python/test_duckdb.py tests/python/test_duckdb_users.py
test-python: build-python
	@$(VENV)/bin/python -m pytest -q tests/python
	@MANYGIL_EXPECT_DUCKDB=1. PYTHONPATH=$(abspath $(VENV)/duckdb-1.x) $(VENV)/bin/python -m pytest -q -p no:cacheprovider $(DUCKDB_TESTS)

test: test-cpp test-python fuzz sanitize tsan

# The edit-test loop: builds, the C++ tests and the Python tests without the soak tests and those
# marked slow (5 s or more each; under 4 minutes warm). `make test` is the full suite CI runs: also
# the slow and soak tests, the fuzzers and both suites again under ASan+UBSan.
check: build-cpp build-python
	@$(CTEST) --test-dir $(BUILD) --output-on-failure -j2
	@$(VENV)/bin/python -m pytest -q tests/python --ignore=tests/python/test_soak.py -m "not slow"

# The C++ tests and the Python suite under AddressSanitizer + UndefinedBehaviorSanitizer: the core,
# its tests and the extension are built instrumented into $(SAN_BUILD) (test_websocket.py's echo
# server too); CPython is not, so the
# runtime is preloaded into the interpreter, and PYTHONMALLOC=malloc lets ASan see Python's objects.
# Leak detection is off: CPython itself keeps memory at exit and for every ended sub-interpreter
# (the soak tests measure leaks instead, and are skipped here: ASan changes RSS).
SAN_BUILD := build-asan
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_ENV := ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
sanitize: bootstrap
	@$(CMAKE) -S . -B $(SAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) -DPython_EXECUTABLE=$(abspath $(VENV)/bin/python) \
	    -DMANYGIL_BUILD_TESTS=ON -DMANYGIL_BUILD_EXAMPLES=OFF -DMANYGIL_BUILD_EXTENSION=ON \
	    "-DCMAKE_C_FLAGS=$(SAN_FLAGS)" "-DCMAKE_CXX_FLAGS=$(SAN_FLAGS)" "-DCMAKE_EXE_LINKER_FLAGS=$(SAN_FLAGS)" "-DCMAKE_SHARED_LINKER_FLAGS=$(SAN_FLAGS)" \
	    "-DCMAKE_MODULE_LINKER_FLAGS=$(SAN_FLAGS)" > $(SAN_BUILD).configure.log || (cat $(SAN_BUILD).configure.log; exit 1)
	@$(CMAKE) --build $(SAN_BUILD) > $(SAN_BUILD).build.log || (tail -40 $(SAN_BUILD).build.log; exit 1)
	@$(SAN_ENV) $(CTEST) --test-dir $(SAN_BUILD) --output-on-failure -j2 -E Install
	@rm -rf $(SAN_BUILD)/pkg && mkdir -p $(SAN_BUILD)/pkg && cp -r python/manygil $(SAN_BUILD)/pkg/ && \
	    cp $(SAN_BUILD)/_core*.so $(SAN_BUILD)/pkg/manygil/
	@$(SAN_ENV) PYTHONMALLOC=malloc PYTHONPATH=$(abspath $(SAN_BUILD)/pkg) \
	    MANYGIL_WEBSOCKET_ECHO_SERVER=$(abspath $(SAN_BUILD)/tests/cpp/websocket_echo_server) \
	    LD_PRELOAD="$$($(CXX_FOR_SAN) -print-file-name=libasan.so) $$($(CXX_FOR_SAN) -print-file-name=libubsan.so)" \
	    $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/python --ignore=tests/python/test_soak.py
	@echo "[sanitize] C++ tests and pytest passed under ASan+UBSan"

# ThreadSanitizer on the C++ parts that run no Python, where threads race by design: the SharedDict
# (lock-free reads against writers, eviction, contention) and the spin-then-sleep waits. CPython is not
# instrumented, so the suites that run Python stay with ASan (sanitize, above).
TSAN_BUILD := build-tsan
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
tsan: bootstrap
	@$(CMAKE) -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) -DPython_EXECUTABLE=$(abspath $(VENV)/bin/python) \
	    -DMANYGIL_BUILD_TESTS=ON -DMANYGIL_BUILD_EXAMPLES=OFF -DMANYGIL_BUILD_EXTENSION=OFF \
	    "-DCMAKE_C_FLAGS=$(TSAN_FLAGS)" "-DCMAKE_CXX_FLAGS=$(TSAN_FLAGS)" "-DCMAKE_EXE_LINKER_FLAGS=$(TSAN_FLAGS)" \
	    > $(TSAN_BUILD).configure.log || (cat $(TSAN_BUILD).configure.log; exit 1)
	@$(CMAKE) --build $(TSAN_BUILD) --target shared_dict_test wake_signal_test channel_waker_test > $(TSAN_BUILD).build.log || \
	    (tail -40 $(TSAN_BUILD).build.log; exit 1)
	@TSAN_OPTIONS=halt_on_error=1 $(TSAN_BUILD)/tests/cpp/shared_dict_test --gtest_brief=1
	@TSAN_OPTIONS=halt_on_error=1 $(TSAN_BUILD)/tests/cpp/wake_signal_test --gtest_brief=1
	@TSAN_OPTIONS=halt_on_error=1 $(TSAN_BUILD)/tests/cpp/channel_waker_test --gtest_brief=1
	@echo "[tsan] SharedDict, wait and channel wake-up tests passed under ThreadSanitizer"

# libFuzzer on the payload decoder (clang, ASan+UBSan), FUZZ_SECONDS per target, seeded from the
# committed corpus (tests/fuzz/corpus); what it finds goes to $(FUZZ_BUILD)/corpus, crashes to
# $(FUZZ_BUILD)/ (a crash or leak fails the run). PYTHONMALLOC=malloc: Python's objects then come
# from malloc, where LeakSanitizer sees the pointers they hold (pymalloc's arenas it does not scan).
FUZZ_BUILD := build-fuzz
CXX_FOR_SAN ?= g++
FUZZ_SECONDS ?= 20
FUZZERS := fuzz_payload_value fuzz_payload_python fuzz_http_request fuzz_websocket_frames
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz: bootstrap
	@CC=clang-14 CXX=clang++-14 $(CMAKE) -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) -DPython_EXECUTABLE=$(abspath $(VENV)/bin/python) \
	    -DMANYGIL_BUILD_TESTS=OFF -DMANYGIL_BUILD_EXAMPLES=OFF -DMANYGIL_BUILD_FUZZERS=ON \
	    "-DCMAKE_C_FLAGS=$(FUZZ_FLAGS)" "-DCMAKE_CXX_FLAGS=$(FUZZ_FLAGS)" \
	    > $(FUZZ_BUILD).configure.log || (cat $(FUZZ_BUILD).configure.log; exit 1)
	@$(CMAKE) --build $(FUZZ_BUILD) > $(FUZZ_BUILD).build.log || (tail -40 $(FUZZ_BUILD).build.log; exit 1)
	@for t in $(FUZZERS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t && \
	    PYTHONMALLOC=malloc $(FUZZ_BUILD)/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
	        -artifact_prefix=$(FUZZ_BUILD)/ $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t \
	        > $(FUZZ_BUILD)/$$t.log 2>&1 || { tail -60 $(FUZZ_BUILD)/$$t.log; exit 1; }; \
	    echo "[fuzz] $$t: $$(grep -E '^#[0-9]+' $(FUZZ_BUILD)/$$t.log | tail -1 | cut -c1-100)"; \
	done

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
	@$(VENV)/bin/python bench/main_call.py
	@$(VENV)/bin/python bench/data_plane.py
	@$(VENV)/bin/python bench/shared_dict.py
	@$(VENV)/bin/python bench/channels_layer.py
	@$(VENV)/bin/python bench/serve.py
	@$(VENV)/bin/python bench/serve_asgi.py
	@$(VENV)/bin/python bench/serve_tls.py
	@$(VENV)/bin/python bench/serve_postgres.py
	@$(VENV)/bin/python bench/dask_workers.py
	@$(VENV)/bin/python bench/duckdb_udf.py

# bench/serve.py (or BENCH_AB=bench/serve_asgi.py) against an earlier build in the same run: BASE is
# a git revision (default: the previous commit), built and installed into $(BUILD)/base-pkg, served
# as "manygil-base".
BASE ?= HEAD~1
BENCH_AB ?= bench/serve.py
bench-ab: build-python
	@rm -rf $(BUILD)/base-src $(BUILD)/base-pkg && mkdir -p $(BUILD)/base-src
	@git archive $(BASE) | tar -x -C $(BUILD)/base-src
	@echo "[bench-ab] building $(BASE) ($$(git rev-parse --short $(BASE))) into $(BUILD)/base-pkg"
	@PATH="$(abspath $(VENV)/bin):$$PATH" $(VENV)/bin/python -m pip install --no-build-isolation --no-deps \
	    --disable-pip-version-check --target $(BUILD)/base-pkg $(BUILD)/base-src > $(BUILD)/base.pip.log 2>&1 \
	    || (tail -40 $(BUILD)/base.pip.log; exit 1)
	@$(VENV)/bin/python $(BENCH_AB) --servers manygil,granian --baseline $(BUILD)/base-pkg $(BENCH_AB_ARGS)

# The bare-CPython reproducers of docs/cpython-bugs.md, against the bootstrap's Python, or the ones in
# PYTHONS (for instance two builds, to see what a newer patch release fixes). Run by hand.
PYTHONS ?= $(abspath $(VENV)/bin/python)
cpython-bugs: bootstrap
	@$(VENV)/bin/python tools/cpython_bugs.py --runs 10 $(PYTHONS)

# docs/compat.md: `manygil compat --deep` over ~150 popular PyPI packages (tools/compat-survey-requirements.txt),
# installed from wheels into a venv of its own ($(BUILD)/compat-survey/venv, never .venv). Run by hand:
# it downloads a few hundred MB; not part of `make test`. A second run reuses the venv.
compat-survey: build-python
	@$(VENV)/bin/python tools/compat_survey.py --workdir $(BUILD)/compat-survey --out docs/compat.md

clean:
	rm -rf $(BUILD) $(BUILD).configure.log $(BUILD).pip.log $(FUZZ_BUILD) $(FUZZ_BUILD).configure.log $(FUZZ_BUILD).build.log \
	    $(SAN_BUILD) $(SAN_BUILD).configure.log $(SAN_BUILD).build.log
