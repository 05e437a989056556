# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap first (CPython >= 3.12,
# Debian packages, .venv); a second run reuses every cache.
VENV  := .venv
BUILD := build
CMAKE := $(VENV)/bin/cmake
CTEST := $(VENV)/bin/ctest

.PHONY: all bootstrap configure build test test-cpp demo clean

all: build

bootstrap:
	@bash tools/bootstrap.sh

$(BUILD)/CMakeCache.txt: | bootstrap
	@$(CMAKE) -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMANYGIL_WERROR=ON \
	    -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) -DPython_EXECUTABLE=$(abspath $(VENV)/bin/python) \
	    > $(BUILD).configure.log || (cat $(BUILD).configure.log; exit 1)
	@echo "[build] configured $(BUILD)/ (log: $(BUILD).configure.log)"

configure: bootstrap $(BUILD)/CMakeCache.txt

build: configure
	@$(CMAKE) --build $(BUILD)

test-cpp: build
	@$(CTEST) --test-dir $(BUILD) --output-on-failure -j2

test: test-cpp

demo: build
	@$(BUILD)/examples/manygil_speedup

clean:
	rm -rf $(BUILD) $(BUILD).configure.log
