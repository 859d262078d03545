# Thin wrapper over CMake for the README's commands.
#   make run    install what is missing, build, start one node
#   make test   install what is missing, build normal + sanitizer, run all tests
#   make package  a Debian package (build-pkg/jarvis_*.deb), Debian's build flags
#   make build-clang-release   the packagers' build type with clang (CI builds it)
#   make coverage  instrumented build in build-cov, the suite, coverage per folder
#   make soak N=20 the whole suite N times under stress-ng (scripts/soak-tests.sh)
#   make cluster N=3  build, then a local cluster of N nodes (jarvisctl dev cluster up)
# Sub-makes (CMake's) would otherwise print every directory they enter.
MAKEFLAGS += --no-print-directory
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
CMAKE_FLAGS ?=

.PHONY: cluster all deps build build-asan build-clang-release coverage soak test test-normal test-asan run bench install package format clean

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

# Debug (-O0) so that lines map to code; the suite's result is the
# target's, the table is printed either way.
coverage:
	@scripts/deps.sh --coverage
	@cmake -S . -B build-cov -DCMAKE_BUILD_TYPE=Debug -DJV_COVERAGE=ON \
		-DJV_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-cov -j $(JOBS)
	@find build-cov -name '*.gcda' -delete
	@echo "== tests: coverage build"
	@cd build-cov && ctest --output-on-failure -j $(JOBS); rc=$$?; \
		cd .. && scripts/coverage.sh build-cov && exit $$rc

N ?= 20
soak:
	@scripts/soak-tests.sh $(N)

# N defaults to 3 here (20 is soak's); DIR as jarvisctl's default unless given.
cluster: build
	@build/bin/jarvisctl dev cluster up $(if $(filter command line,$(origin N)),$(N),3) $(if $(DIR),--dir $(DIR),)

test-normal: build
	@echo "== tests: normal build"
	@cd build && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	@echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer build"
	@cd build-asan && ctest --output-on-failure -j $(JOBS)

test: test-normal test-asan

# run-node.sh builds itself, quietly: the banner comes once the node is up.
run: deps
	@scripts/run-node.sh

bench: build
	@scripts/deps.sh --bench
	@scripts/bench.sh

install: build
	@cmake --install build --prefix $(PREFIX)

# Its own build dir: prefix /usr and the hardening flags Debian builds with
# (dpkg-buildflags), no tests or benchmarks. cmake/JvPackage.cmake says what
# goes in; tests/pkg/package_test.sh checks it.
package: deps
	@DEB_BUILD_MAINT_OPTIONS=hardening=+all; export DEB_BUILD_MAINT_OPTIONS; \
	cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_INSTALL_PREFIX=/usr -DJV_BUILD_TESTS=OFF -DJV_BUILD_BENCH=OFF \
		-DCMAKE_C_FLAGS="$$(dpkg-buildflags --get CPPFLAGS) $$(dpkg-buildflags --get CFLAGS)" \
		-DCMAKE_EXE_LINKER_FLAGS="$$(dpkg-buildflags --get LDFLAGS)" \
		$(CMAKE_FLAGS) >/dev/null
	@cmake --build build-pkg -j $(JOBS)
	@cd build-pkg && cpack -G DEB >cpack.log 2>&1 || { cat cpack.log; exit 1; }
	@ls build-pkg/jarvis_*.deb

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	@rm -rf build build-asan build-clang build-cov build-pkg
