# lookalike — `make demo` and `make test` set everything up on a fresh machine (Python 3.11 + pip).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := .demo

.PHONY: install demo test test-postgres test-ray lint bench clean

$(STAMP): pyproject.toml
	@# Debian packages some tests use: the ffmpeg CLI (rotated-video input) and chromium (the web page, driven by
	@# Playwright's Python package; no browser download), and iproute2 (`ip`: the Ray tests' loopback namespace).
	@# As root they are installed, otherwise those tests skip.
	@missing="$$(for p in ffmpeg chromium ip; do command -v $$p >/dev/null || echo $$p; done | sed 's/^ip$$/iproute2/')"; \
	if [ -n "$$missing" ]; then \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
		echo "not installed: $$missing (the tests that need them will be skipped)"; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: pip takes these builds from the local wheel store (a newer one is a 3 GB download)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev,postgres]'
	touch $(STAMP)

install: $(STAMP)
	@# byte-compile the editable sources, as pip does for installed packages (PYTHONDONTWRITEBYTECODE may be set)
	@$(BIN)/python -m compileall -q src benchmarks

demo: install
	@test -d $(DEMO)/media || $(BIN)/python -m benchmarks.corpus demo $(DEMO)/media
	$(BIN)/lookalike --home $(DEMO)/home index $(DEMO)/media
	$(BIN)/lookalike --home $(DEMO)/home search $(DEMO)/media/photos/chelsea.png $(DEMO)/media/videos/bikes_excerpt_4s-8s.mp4 -k 5
	$(BIN)/lookalike --home $(DEMO)/home dupes
	$(BIN)/lookalike --home $(DEMO)/home info

test: install
	$(BIN)/python -m pytest -q

# the suite against PostgreSQL (a throwaway cluster on loopback; Debian's postgresql is installed if missing), less
# the tests marked catalog_free: they open no database (`make test` fails any of them that does), so a second run
# would repeat them unchanged
test-postgres: install
	bash -c '. .ci/postgres.sh && $(BIN)/python -m pytest -q -m "not catalog_free"'

# the Ray engine's tests on a real Ray (a local one, a two-node cluster) in a network namespace with only loopback:
# Ray binds the machine's address, and only loopback traffic is allowed here. Without root (no namespace) they skip.
test-ray: install
	unshare -n sh -c 'ip link set lo up && LOOKALIKE_REQUIRE_RAY=1 $(BIN)/python -m pytest -q -m ray tests' || \
	{ [ "$$(id -u)" != 0 ] && $(BIN)/python -m pytest -q -m ray tests; }

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src
	$(BIN)/lint-imports

bench: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m benchmarks.dupes_quality --work .bench/dupes
	$(BIN)/python -m benchmarks.dupes_calibrate --work .bench/dupes
	$(BIN)/python -m benchmarks.dupes_scale --sizes 100000 1000000
	$(BIN)/python -m benchmarks.dedup_quality
	$(BIN)/python -m benchmarks.throughput
	$(BIN)/python -m benchmarks.video_copies
	$(BIN)/python -m benchmarks.video_speed
	$(BIN)/python -m benchmarks.index_scale --sizes 100000 1000000
	$(BIN)/python -m benchmarks.serve_load --rates 10 20 40 --seconds 60
	$(BIN)/python -m benchmarks.serve_load --rates 20 --seconds 60 --servers cli decode-in-process default-threads
	$(BIN)/python -m benchmarks.serve_breakdown
	$(BIN)/python -m benchmarks.decode_strategy --work .bench/indexing
	$(BIN)/python -m benchmarks.preprocess_speed --work .bench/indexing
	$(BIN)/python -m benchmarks.catalog_writes
	$(BIN)/python -m benchmarks.mmap_rss
	$(BIN)/python -m benchmarks.startup

clean:
	rm -rf $(DEMO) .bench .pytest_cache .ruff_cache .mypy_cache
