# Shortcuts; scripts/dev.sh does the work (and installs what it needs).
.PHONY: run test lint soak bench bench-calls
run:
	bash scripts/dev.sh run
test:
	bash scripts/dev.sh test
lint:
	bash scripts/dev.sh lint

# Webhook and scale-out benchmarks -> docs/BENCHMARKS.md (needs Debian's wrk and
# redis-server; installs pyinstrument into the venv for the profile). Takes about 4 minutes.
bench:
	@test -x .venv/bin/python || bash scripts/dev.sh lint >/dev/null 2>&1 || true
	@test -x .venv/bin/python || { echo "no .venv: run 'make lint' or 'bash scripts/dev.sh test' first" >&2; exit 2; }
	@command -v wrk >/dev/null || { echo "wrk is missing: sudo apt-get install wrk" >&2; exit 2; }
	@.venv/bin/python -c "import pyinstrument" 2>/dev/null || .venv/bin/python -m pip install -q pyinstrument
	mkdir -p var/bench
	.venv/bin/python bench/webhook_bench.py --profile --json var/bench/webhook.json
	.venv/bin/python bench/report.py var/bench/webhook.json docs/BENCHMARKS.md

# Simultaneous calls through the carrier emulator (real time), stepped until a webhook
# takes over 200 ms or an error -> docs/BENCHMARKS_CALLS.md, and its headline into
# docs/BENCHMARKS.md (when var/bench/webhook.json from `make bench` is there). Takes up to
# 15 minutes (--max-minutes); needs Debian's redis-server.
bench-calls:
	@test -x .venv/bin/python || { echo "no .venv: run 'make lint' or 'bash scripts/dev.sh test' first" >&2; exit 2; }
	mkdir -p var/bench
	.venv/bin/python bench/calls_capacity.py --json var/bench/calls.json --markdown docs/BENCHMARKS_CALLS.md
	@if [ -f var/bench/webhook.json ]; then .venv/bin/python bench/report.py var/bench/webhook.json docs/BENCHMARKS.md; fi

# Long check, not in the default suite: twice nominal load for 30 min, memory sampled.
# Passes with zero lost calls and the service's RSS within 10 % after the warm-up (the
# first 20 % of the run). SOAK_MINUTES=3 make soak for a short run; results in
# docs/OPERATIONS.md (Soak). `bench/soak.py --tracemalloc DIR` traces the service.
soak:
	mkdir -p var
	.venv/bin/python bench/soak.py --minutes $${SOAK_MINUTES:-30} --json var/soak.json
