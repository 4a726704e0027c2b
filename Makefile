# twinkle: the two commands a new machine needs are `make demo` and `make test`.
# Both install missing system packages first (`make deps`, apt-get as root).

CARGO ?= cargo
TWINKLE := target/debug/twinkle

.PHONY: deps build release test demo bench clean

## Install missing system packages (apt-get when root; otherwise list them and fail).
deps:
	@bash scripts/deps.sh

## Build the workspace (debug) and the twinkle binary.
build: deps
	$(CARGO) build --workspace --all-targets

## Optimised build, for benchmarks.
release: deps
	$(CARGO) build --release

## Everything CI runs: deps, build, every test of the workspace and of the
## guest ABI, the policy examples; ends with "N passed, N failed".
test: build
	CARGO=$(CARGO) bash scripts/run-tests.sh

## The main job on the embedded defaults. Until `twinkle serve` lands (the
## provisioner issue), the demo shows the policy engine on a flash-crowd
## trace, web apps in KVM VMs (hello; rubis with its data in Redis), fast
## start, and the dispatcher under load.
demo: build
	TWINKLE=$(TWINKLE) bash scripts/demo.sh

## The benchmarks (release build); results in docs/results.md.
bench: release
	target/release/twinkle bench boot --json
	target/release/twinkle bench proxy --json
	target/release/twinkle bench proxy --upstreams 4 --connections 256 --json
	target/release/twinkle bench loadgen --json
	target/release/twinkle bench app --app rubis --json
	target/release/twinkle bench app --app tpcw --json
	@if [ "$$(id -u)" = 0 ]; then target/release/twinkle host prepare --huge-pages 600; fi
	target/release/twinkle bench startup --json

clean:
	$(CARGO) clean
