# Two commands do everything on a fresh Debian 12 machine (see README.md):
#   make run   install dependencies, build a release, run cowherd on the demo config
#   make test  install dependencies, build, run every test (and the ASan+UBSan build)
.PHONY: all deps test-deps install-debs build asan run test test-release test-asan test-tsan \
        test-container fuzz install format clean static deb

DEBS := libboost1.81-dev libboost-json1.81-dev libyaml-cpp-dev libspdlog-dev libcli11-dev \
        libgtest-dev libncurses-dev cmake g++ make
# What only the tests use: promtool checks /metrics, systemd-analyze checks the unit, curl
# scrapes, unshare/setpriv (util-linux) run the pid-namespace and unprivileged tests, python3
# runs the Python template; runc runs the container image, busybox-static is its test workload's
# shell, debootstrap makes the clean Debian 12 the .deb is installed in.
TEST_DEBS := prometheus systemd curl util-linux python3 tmux runc busybox-static debootstrap
RELEASE := build/release
ASAN := build/asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CONFIG ?= config/examples/demo.yaml

all: build

# Installs only what is missing, so a second run is instant and offline.
deps:
	@$(MAKE) --no-print-directory install-debs PKGS="$(DEBS)"

test-deps:
	@$(MAKE) --no-print-directory install-debs PKGS="$(DEBS) $(TEST_DEBS)"

install-debs:
	@missing=$$(for p in $(PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release -DCOWHERD_WERROR=ON >/dev/null
	cmake --build $(RELEASE) -j $(JOBS)

asan: deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DCOWHERD_SANITIZE=ON -DCOWHERD_WERROR=ON >/dev/null
	cmake --build $(ASAN) -j $(JOBS) --target unit_tests process_tests e2e_tests chaos_tests

# cowherd and cowctl with no shared-library dependencies (cmake/static.cmake), for any
# container or distribution: build/static/bin.
STATIC := build/static
static: deps
	cmake -S . -B $(STATIC) -DCMAKE_BUILD_TYPE=Release -DCOWHERD_STATIC=ON -DCOWHERD_TESTS=OFF \
	    -DCOWHERD_WERROR=ON >/dev/null
	cmake --build $(STATIC) -j $(JOBS) --target cowherd cowctl

# The Debian package: build/deb/cowherd_VERSION_ARCH.deb (cmake/package.cmake). dpkg-dev's
# dpkg-shlibdeps writes its Depends; help2man and pandoc write the man pages.
DEB := build/deb
PKG_DEBS := dpkg-dev help2man pandoc
deb: deps
	@$(MAKE) --no-print-directory install-debs PKGS="$(PKG_DEBS)"
	cmake -S . -B $(DEB) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	    -DCOWHERD_TESTS=OFF -DCOWHERD_MANPAGES=ON -DCOWHERD_WERROR=ON >/dev/null
	cmake --build $(DEB) -j $(JOBS) --target cowherd cowctl cowtemplate man
	rm -f $(DEB)/*.deb
	cd $(DEB) && cpack -G DEB
	@ls $(DEB)/*.deb

run: build
	$(RELEASE)/bin/cowherd -c $(CONFIG)

test: test-release test-asan test-tsan test-container

test-release: test-deps build
	cd $(RELEASE) && ctest --output-on-failure -j $(JOBS) --timeout 300

# The container tier (tests/container): the image of packaging/oci-bundle.sh, with the static
# binaries, run by runc with cowherd as PID 1; and the .deb installed, run, removed and purged
# in a debootstrapped bookworm, made once and cached in $(STATIC)/bookworm-minbase.
test-container: test-deps static deb
	cmake -S . -B $(STATIC) -DCOWHERD_CONTAINER_TESTS=ON -DCOWHERD_DEB_DIR=$(abspath $(DEB)) >/dev/null
	cmake --build $(STATIC) -j $(JOBS) --target container_tests
	cd $(STATIC) && ctest --output-on-failure -L container

# AddressSanitizer + UBSan build. The e2e and chaos tiers run here too, against an ASan
# cowherd and cowctl: a report aborts the daemon, and the e2e harness fails any test whose
# daemon log holds one (a leak or a use-after-free at shutdown included). The test's workers
# stay uninstrumented (CMakeLists.txt). Two tests check budgets that ASan blows by design: the
# worst status round trip under attack (the ASan daemon's parsing of 100 MiB of garbage adds
# up to 500 ms, the whole budget) and the daemon's RSS after a kill storm (ASan's quarantine
# keeps freed memory, up to 256 MiB); the Release tier checks those.
ASAN_SKIP := Security.HostileClientsNeverStallOthers|Chaos.KillStormLeavesEightRunning
test-asan: test-deps asan
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS) -L 'unit|process|e2e' -E '$(ASAN_SKIP)' --timeout 600

# Fuzzing (by hand, not in CI): libFuzzer targets built with clang, FUZZ_SECONDS each.
FUZZ := build/fuzz
FUZZ_SECONDS ?= 60
fuzz: deps
	@$(MAKE) --no-print-directory install-debs PKGS="clang libclang-rt-14-dev"
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCOWHERD_FUZZ=ON -DCOWHERD_TESTS=OFF >/dev/null
	cmake --build $(FUZZ) -j $(JOBS) --target fuzz_config fuzz_proc fuzz_protocol
	@for t in config proc protocol; do \
	    mkdir -p fuzz/corpus-work/$$t; \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	    $(FUZZ)/bin/fuzz_$$t fuzz/corpus-work/$$t fuzz/corpus/$$t -max_len=65536 \
	        -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=fuzz/ \
	        >fuzz/corpus-work/$$t.log 2>&1; rc=$$?; \
	    tail -12 fuzz/corpus-work/$$t.log; \
	    [ $$rc -eq 0 ] || { echo "fuzz_$$t failed (rc $$rc): see fuzz/corpus-work/$$t.log"; exit 1; }; \
	done

# ThreadSanitizer build of the unit and process tiers (the daemon runs reader threads).
TSAN := build/tsan
# The daemon's threads (the /proc reader, the log writer) race only against a live loop, so
# the e2e tier runs here too, against a TSan daemon; halt_on_error makes any report kill it
# and fail the test. Two tests check latency and RSS budgets that TSan's overhead blows by
# design; the Release tier checks those.
TSAN_SKIP := Security.HostileClientsNeverStallOthers|Chaos.KillStormLeavesEightRunning
test-tsan: test-deps
	cmake -S . -B $(TSAN) -DCMAKE_BUILD_TYPE=Debug -DCOWHERD_TSAN=ON -DCOWHERD_WERROR=ON >/dev/null
	cmake --build $(TSAN) -j $(JOBS)
	cd $(TSAN) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	    ctest --output-on-failure -j $(JOBS) -L 'unit|process|e2e' -E '$(TSAN_SKIP)' --timeout 600

install: build
	cmake --install $(RELEASE)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build
