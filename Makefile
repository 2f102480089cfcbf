# sas-core developer targets. Two virtual environments at fixed paths outside the repo
# (torch from PyPI is a multi-GB CUDA build: install it once per machine, reuse it from
# every clone): VENV has everything the tests need, DEMO_VENV only what the demo needs.
# Override with `make VENV=... DEMO_VENV=...`.
VENV ?= /opt/sas-venv
DEMO_VENV ?= /opt/sas-demo-venv
# verl pins transformers < 5.11 and OpenRLHF == 5.15: verl's tests get their own venv,
# built from this package's `verl` extra (what `pip install "sas-core[verl]"` gives a
# user). It sees VENV's packages (torch, ray, ...) through a .pth file, after its own.
VERL_VENV ?= /opt/sas-verl-venv
PY := $(VENV)/bin/python
VERL_PY := $(VERL_VENV)/bin/python
EXTRAS ?= test

.PHONY: dev verl-env test-verl verl-cpu-loop openrlhf-cpu-loop wheel-aarch64 flash-attn-cpu browser lint test test-rust test-python bench demo demo-env demo-constraints wheel release-check clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

## dev: create the venv if needed, install the test extras and build the extension (editable)
dev: $(PY) flash-attn-cpu
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"

# openrlhf (a test dependency) pins flash-attn, whose build needs CUDA. On a machine
# without a GPU, install flash-attn's Python modules only; the tests shim its CUDA module.
FLASH_ATTN ?= 2.8.3
flash-attn-cpu: $(PY)
	@$(PY) -m pip show -q flash-attn >/dev/null 2>&1 || { \
	  $(PY) -m pip install -q "torch>=2.2" packaging psutil ninja einops wheel setuptools && \
	  FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE FLASH_ATTENTION_FORCE_BUILD=TRUE \
	  $(PY) -m pip install -q --no-build-isolation --no-deps "flash-attn==$(FLASH_ATTN)"; }

## browser: Debian's chromium, for the test that loads the inspect page (needs root + apt)
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## lint: rustfmt, clippy (warnings are errors), ruff
lint: dev
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -q -- -D warnings
	$(VENV)/bin/ruff check python tests benchmarks integrations scripts
	$(VENV)/bin/ruff format --check python tests benchmarks integrations scripts

test-rust:
	cargo test -p sas-core

# The benchmarks run once each, untimed, so their equality checks are tests too. The
# start-up hook's tests install the wheel that ships (`wheel`, which release-check reuses)
# rather than building one of their own.
test-python: dev browser wheel
	SAS_CORE_WHEEL=$$(ls dist/sas_core-*_x86_64.whl) SAS_REQUIRE_OPENRLHF=1 \
	  $(PY) -m pytest tests benchmarks -q --benchmark-disable

## verl-env: the verl venv from `.[verl]`, editable (reinstalled when the extra or the clone changes)
verl-env: dev
	@test -x $(VERL_PY) || "$$($(PY) -c 'import sys; print(sys.base_prefix)')/bin/python3" -m venv $(VERL_VENV)
	@printf '%s\n' "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
	  > "$$($(VERL_PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_sas_venv.pth"
	@stamp=$(VERL_VENV)/.sas-verl-extra; want="$(CURDIR) $$($(PY) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["verl"])')"; \
	  if [ "$$(cat $$stamp 2>/dev/null)" != "$$want" ]; then \
	    $(VERL_PY) -m pip install -q -e ".[verl]" && echo "$$want" > $$stamp; \
	  fi

## test-verl: verl's own compute_advantage, entry point, example, benchmark and its whole
## training loop on the CPU (main_ppo, legacy and V1), in the verl venv
test-verl: verl-env
	$(VERL_PY) -m pytest tests/test_verl.py tests/test_verl_v1.py tests/test_verl_cpu_loop.py benchmarks/test_bench_verl.py benchmarks/test_bench_verl_v1.py -q --benchmark-disable

## verl-cpu-loop: 2 steps of verl's own main_ppo with adv_estimator=sas on the CPU
## (TRAINER=v1|legacy, ESTIMATOR=sas|grpo; more Hydra overrides in ARGS)
TRAINER ?= v1
ESTIMATOR ?= sas
verl-cpu-loop: verl-env
	$(VERL_PY) tests/verl_cpu/loop.py --trainer $(TRAINER) --estimator $(ESTIMATOR) $(ARGS)

## openrlhf-cpu-loop: 2 steps of OpenRLHF's own train_ppo_ray with --advantage_estimator sas
## on the CPU (ESTIMATOR=sas|group_norm, RANKS=DeepSpeed ranks, more train_ppo_ray flags in ARGS)
RANKS ?= 1
openrlhf-cpu-loop: dev
	$(PY) tests/openrlhf_cpu/loop.py --estimator $(ESTIMATOR) --ranks $(RANKS) $(ARGS)

## wheel: the abi3 wheel for x86_64 Linux, manylinux2014 (glibc 2.17+: Ubuntu 18.04+,
## RHEL/Rocky 7+ and older HPC images take it; zig is the linker), and the sdist, into dist/
wheel: dev
	rm -rf dist
	PATH=$(VENV)/bin:$$PATH $(VENV)/bin/maturin build --release --zig --compatibility manylinux2014 \
	  --target x86_64-unknown-linux-gnu --out dist -q
	$(VENV)/bin/maturin sdist --out dist

## wheel-aarch64: the same wheel for aarch64 Linux (GH200/GB200 nodes), cross-built with
## rustup's aarch64 target and zig, into dist/
wheel-aarch64: dev
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || \
	  rustup target add aarch64-unknown-linux-gnu || \
	  { echo "wheel-aarch64: skipped, rustup cannot add the aarch64 target here"; exit 0; }
	PATH=$(VENV)/bin:$$PATH $(VENV)/bin/maturin build --release --zig --compatibility manylinux2014 \
	  --target aarch64-unknown-linux-gnu --out dist -q

## release-check: the wheels and sdist installed as a user would: x86_64 on every CPython
## present, aarch64 under qemu-user (Debian's arm64 CPython)
release-check: wheel wheel-aarch64
	TWINE=$(VENV)/bin/twine AUDITWHEEL=$(VENV)/bin/auditwheel scripts/release_check.sh
	scripts/aarch64_check.sh

## test: everything CI runs
test: lint test-rust test-python test-verl release-check

## bench: the benchmark suite, for real, JSON into .benchmarks/
bench: dev
	mkdir -p .benchmarks
	$(PY) -m pytest benchmarks -q --benchmark-only --benchmark-json=.benchmarks/latest.json
	$(PY) benchmarks/report.py .benchmarks/latest.json

## demo: the main job (CPU, no downloads), in its own light environment (the demo extra)
demo: demo-env
	$(DEMO_VENV)/bin/sas-core demo

# The demo environment installs exact versions (demo-constraints.txt), so that a fresh
# machine gets the versions that produced the README's figures.
# (numpy 2.4 and pandas 3, among the pins, need CPython 3.11+: DEMO_PYTHON names one)
DEMO_PYTHON ?= python3
demo-env:
	@$(DEMO_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "make demo: the pinned demo environment needs CPython 3.11+; $(DEMO_PYTHON) is $$($(DEMO_PYTHON) -V 2>&1) (set DEMO_PYTHON=python3.11)"; exit 1; }
	@test -x $(DEMO_VENV)/bin/python || $(DEMO_PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install -q -c demo-constraints.txt ".[demo]"

## demo-constraints: regenerate demo-constraints.txt: the `demo` extra resolved in a
## scratch venv under the versions design 3's units recorded (docs/demo-design3/demo.json)
DEMO_LOCK_VENV ?= /tmp/sas-demo-lock
demo-constraints:
	rm -rf $(DEMO_LOCK_VENV) && $(DEMO_PYTHON) -m venv $(DEMO_LOCK_VENV)
	$(DEMO_LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEMO_PYTHON) scripts/demo_pins.py docs/demo-design3/demo.json > $(DEMO_LOCK_VENV)/pins.txt
	$(DEMO_LOCK_VENV)/bin/python -m pip install -q -c $(DEMO_LOCK_VENV)/pins.txt ".[demo]"
	{ echo "# make demo-constraints: the demo extra under docs/demo-design3/demo.json's versions,"; \
	  echo "# resolved with CPython $$($(DEMO_LOCK_VENV)/bin/python -c 'import platform; print(platform.python_version())') on Linux x86_64. Do not edit by hand."; \
	  $(DEMO_LOCK_VENV)/bin/python -m pip freeze --exclude sas-core; } > demo-constraints.txt

clean:
	cargo clean
	rm -rf .pytest_cache .hypothesis .benchmarks python/sas_core/*.so
