# Rollgate: the two commands are `make demo` and `make test`; each installs what is missing
# (Debian packages, the local control plane's binaries in ~/.cache/rollgate) and builds first.
BUILD      ?= build
SAN_BUILD  ?= build-san
JOBS       ?= 2
CMAKE_ARGS ?=
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps control-plane build build-san test test-k8s-previous test-unit test-san demo image manifests bench fuzz format lint clean

all: build

deps:
	@bash hack/bootstrap.sh

control-plane: deps
	@bash hack/build-control-plane.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

$(SAN_BUILD)/build.ninja: | deps
	cmake -S . -B $(SAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DROLLGATE_SANITIZE=ON $(CMAKE_ARGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j$(JOBS)

# The sanitizer tree runs the unit label only, so it builds only what that label needs.
build-san: deps $(SAN_BUILD)/build.ninja
	cmake --build $(SAN_BUILD) -j$(JOBS) --target unit_tests

# Every test: unit, end-to-end (real control plane) and the clang-tidy check (label lint) on the
# normal build, then the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
# clang-tidy caches clean files outside the repository (tests/tidy_check.sh) and checks again
# only what changed: about 20 s when nothing did; the first run on a machine takes 30+ minutes on
# 2 cores.
test: control-plane build build-san
	cd $(BUILD) && ctest --output-on-failure --timeout 900
	cd $(SAN_BUILD) && ctest --output-on-failure -L unit --timeout 900

# The e2e suite against the previous Kubernetes minor version (the second of K8S_SUPPORTED in
# hack/control-plane-versions.sh), from the same build: builds that version's control plane once
# (about 20 minutes), then runs every e2e test on it (about 8 minutes). Not part of `make test`:
# on a fresh machine the second control-plane build would push a cold CI run past its limit.
# Any supported version: make test-k8s-previous K8S_PREVIOUS=v1.35.4
K8S_PREVIOUS ?= $(shell bash -c 'source hack/control-plane-versions.sh && echo $${K8S_SUPPORTED[1]}')
test-k8s-previous: deps build
	ROLLGATE_K8S_VERSION=$(K8S_PREVIOUS) bash hack/build-control-plane.sh
	cd $(BUILD) && ROLLGATE_K8S_VERSION=$(K8S_PREVIOUS) ctest --output-on-failure -L e2e --timeout 900

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

# The demo needs only the controller and the CLI, not the tests.
demo: control-plane deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j$(JOBS) --target rollgate-controller rollgate
	@bash hack/demo.sh $(BUILD)

# `make demo` on a real node (hack/real-node.sh; root): real testapp containers on rollgate-real-0,
# swapped 1.0 -> 2.0 environment by environment, with smoke checks run as Jobs on the node
# (hack/demo.sh --real). One real node per machine.
.PHONY: demo-real
demo-real: control-plane deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j$(JOBS) --target rollgate-controller rollgate
	@bash hack/demo.sh --real $(BUILD)

# `make demo` across two clusters (issue 17): dev, staging and canary in the hub, production in a
# second local control plane set up with the chart's target mode and reached through the Secret
# that `rollgate cluster kubeconfig --secret` makes (hack/demo.sh --multicluster).
.PHONY: demo-multicluster
demo-multicluster: control-plane deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j$(JOBS) --target rollgate-controller rollgate
	@bash hack/demo.sh --multicluster $(BUILD)

# The container images, reproducible, without a registry or container engine (hack/image.sh):
# $(BUILD)/images/rollgate-controller-<version>.tar and rollgate-validate-<version>.tar
# (oci-archive; push with skopeo copy), from the binaries of $(BUILD).
image: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j$(JOBS) --target rollgate-controller rollgate rollgate-validate
	@bash hack/image.sh $(BUILD)

# Fuzzes every decoder for FUZZ_SECONDS each (clang, ASan+UBSan, in $(FUZZ_BUILD)); fails on a finding.
fuzz: deps
	FUZZ_BUILD=$(FUZZ_BUILD) JOBS=$(JOBS) bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# The benchmark (not part of `make test`): make bench BENCH_ARGS="--preset medium"
bench: control-plane deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j$(JOBS) --target rollgate-controller
	@bash hack/bench.sh --build-dir $(BUILD) $(BENCH_ARGS)

manifests: control-plane
	bash hack/render-manifests.sh

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

# clang-tidy on controller/ and tests/ (the ctest test tidy_check, label lint; also in `make test`).
lint: build
	bash tests/tidy_check.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
