# The two commands of the README:
#   make up    install what is missing, build, and bring the cluster up
#   make test  install what is missing, build, and run every test
.PHONY: setup build test up down status clean bench bench-smoke chaos chaos-short format coverage compose-up compose-down compose-clean compose-test

setup:
	scripts/setup.sh

export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true

build: setup
	cmake --preset release -G Ninja >/dev/null
	cmake --build --preset release -j $$(nproc)

test:
	scripts/test.sh

up: build
	scripts/cluster.sh up

down:
	scripts/cluster.sh down

status:
	scripts/cluster.sh status

clean:
	scripts/cluster.sh clean

# docker-compose.yml with podman on a machine without Docker (docs/containers.md).
compose-up:
	scripts/compose.sh up

compose-down:
	scripts/compose.sh down

compose-clean:
	scripts/compose.sh clean

compose-test:
	tests/compose/compose_test.sh

# Line and branch coverage of src/ by the unit and process tests, per module.
coverage:
	scripts/coverage.sh

bench: build
	bench/etcd_client_bench.sh
	bench/failover_bench.sh
	bench/exporter_scrape_bench.sh
	bench/rest_idle_bench.sh
	/usr/bin/python3 bench/router_bench.py
	bench/cold_start_bench.sh
	/usr/bin/python3 bench/session_bench.py

# Every benchmark once with tiny parameters (CI runs it: a benchmark that no longer runs fails).
bench-smoke: build
	bench/smoke.sh

# One fault of each kind against a synchronous-mode cluster (about 3 minutes; CI runs it).
chaos-short: build
	ctest --preset release -L chaos --timeout 1200 --no-tests=error

# The long fault-injection run (issue 6): MODE=sync|async, FAULTS=n; the report goes to bench/results.
MODE ?= sync
FAULTS ?= 100
chaos: build
	/usr/bin/python3 tests/chaos/chaos.py --mode $(MODE) --faults $(FAULTS) \
		--out bench/results/$$(date -u +%F-%H%M)-chaos-$(MODE).md

format:
	git ls-files '*.cc' '*.h' | grep -v '^tests/fuzz/corpus/' | xargs clang-format -i
