# A thin layer over CMake. Every target installs the Debian packages it needs
# first (scripts/install-deps), so it works on a fresh Debian 12 machine.
#   make demo    the whole system from its default configuration
#   make test    build and run every test
BUILD       ?= build
ASAN_BUILD  ?= build-asan
TSAN_BUILD  ?= build-tsan
FUZZ_BUILD  ?= build-fuzz
FUZZ_SECONDS ?= 60
# A report ends the process that made it (nucleusd included, which inherits
# the tests' environment), so the test that met it fails.
TSAN_OPTIONS_CI ?= halt_on_error=1:second_deadlock_stack=1
JOBS        ?= $(shell nproc)

.PHONY: all deps build test demo bench bench-quick asan-test tsan-test fuzz format tidy clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/Makefile: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	scripts/demo $(BUILD)

bench: build
	$(BUILD)/bench/nucleus-bench

bench-quick: build
	$(BUILD)/bench/nucleus-bench --quick

asan-test: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNUCLEUS_SANITIZE=ON -DNUCLEUS_BUILD_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -LE packaging -j $(JOBS)

tsan-test: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNUCLEUS_TSAN=ON -DNUCLEUS_BUILD_BENCH=OFF
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS="$(TSAN_OPTIONS_CI)" ctest --output-on-failure -LE packaging -j $(JOBS)

fuzz:
	@scripts/install-deps clang libclang-rt-14-dev
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DNUCLEUS_FUZZ=ON -DNUCLEUS_BUILD_TESTS=OFF -DNUCLEUS_BUILD_BENCH=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_requests fuzz_config
	for t in fuzz_requests fuzz_config; do \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$t && \
	  $(FUZZ_BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus-$$t fuzz/seeds/$$t || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.cc' '*.h' '*.c' '*.hpp')

tidy: build
	clang-tidy -p $(BUILD) --quiet $$(git ls-files 'daemon/*.cc' 'client-lib/src/*.cc')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
