# Thin wrapper over CMake for the README's commands.
#   make run    install what is missing, build, start one node
#   make test   install what is missing, build normal + sanitizer, run all tests
#   make build-clang-release   the packagers' build type with clang (CI builds it)
# Sub-makes (CMake's) would otherwise print every directory they enter.
MAKEFLAGS += --no-print-directory
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
CMAKE_FLAGS ?=

.PHONY: all deps build build-asan build-clang-release test test-normal test-asan run bench install format clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DJV_SANITIZE=ON \
		$(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)

build-clang-release:
	@scripts/deps.sh --clang
	@cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang \
		-DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-clang -j $(JOBS)

test-normal: build
	@echo "== tests: normal build"
	@cd build && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	@echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer build"
	@cd build-asan && ctest --output-on-failure -j $(JOBS)

test: test-normal test-asan

run: build
	@scripts/run-node.sh

bench: build
	@scripts/deps.sh --bench
	@scripts/bench.sh

install: build
	@cmake --install build --prefix $(PREFIX)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	@rm -rf build build-asan build-clang
