# Demandflow. The two commands that matter: `make demo` and `make test`.
GO       ?= go
BIN      := bin/demandflow
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Tests run with the race detector; -p 2 matches the 2-core CI machine.
TESTFLAGS ?= -race -p 2 -timeout 20m

.PHONY: all build demo test test-short vet fmt bench bench-tracking accuracy drill drill-netns clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/demandflow

# Build and run one node with embedded defaults (./data, 127.0.0.1:7070),
# load the bundled sample and keep serving until Ctrl-C.
demo: build
	./$(BIN) demo

# Every test, as CI runs them (.ci/run calls this).
test: vet
	$(GO) test $(TESTFLAGS) ./...

test-short:
	$(GO) test -short ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# The standard benchmark set: micro-benchmarks of the hot paths (decoders,
# apply, reads, HTTP ingest, forecasting), then end-to-end ingest runs
# against a local node over h1/h2/h3, appended to bench/RESULTS.md: first
# with zstd bodies (the default of push and bench, as clients send them),
# then the same without compression, for the record. The h3 Arrow run is
# repeated with 16 requests in flight: at 8 the box idles 10-15%
# (bench/RESULTS.md, sessions 19:35-20:45 and 21:08). The Arrow rows also
# report the run after a 1 s warm-up (--warmup; QUIC slow start and the
# node's first memtables), beside the whole run's figures. The ingest runs
# go before the Go benchmarks: on the VM this was measured on, the 2.5
# minutes of those left the next half minute of ingest 10-15% slower
# (bench/RESULTS.md, 2026-12-07).
BENCH_INGEST = ./$(BIN) bench ingest --local --batch 10000 --concurrency 8 --pregen 16 --quiet --results bench/RESULTS.md
bench: build
	mkdir -p bench/out
	$(BENCH_INGEST) --proto h1 --format ndjson --rows 4000000 --json bench/out/h1-ndjson.json
	$(BENCH_INGEST) --proto h3 --format ndjson --rows 4000000 --json bench/out/h3-ndjson.json
	$(BENCH_INGEST) --proto h3 --format arrow --rows 6000000 --warmup 1s --json bench/out/h3-arrow.json --plot bench/out/h3-arrow.svg
	$(BENCH_INGEST) --proto h3 --format arrow --rows 6000000 --concurrency 16 --warmup 1s --json bench/out/h3-arrow-c16.json
	$(BENCH_INGEST) --proto h3 --format ndjson --rows 6000000 --rate 50% --calibrate 5s --slowest 10 --json bench/out/h3-ndjson-rate50.json --plot bench/out/h3-ndjson-rate50.svg
	$(BENCH_INGEST) --proto h2 --format csv --rows 4000000 --json bench/out/h2-csv.json
	$(BENCH_INGEST) --compress none --proto h1 --format ndjson --rows 2000000 --json bench/out/h1-ndjson-raw.json
	$(BENCH_INGEST) --compress none --proto h3 --format ndjson --rows 2000000 --json bench/out/h3-ndjson-raw.json
	$(BENCH_INGEST) --compress none --proto h3 --format arrow --rows 4000000 --json bench/out/h3-arrow-raw.json
	$(BENCH_INGEST) --compress none --proto h3 --format ndjson --rows 3000000 --rate 50% --calibrate 5s --json bench/out/h3-ndjson-raw-rate50.json
	$(GO) test -run '^$$' -bench . -benchtime 2s -cpu 1 ./stream/
	$(GO) test -run '^$$' -bench . -benchtime 20x ./cluster/ ./node/
	$(GO) test -run '^$$' -bench 'AutoETS|Theta$$|Croston|Engine' -cpu 1,2 ./forecast/

# Issue 4's target (ingest with the object index >= 90% of tracking off):
# medians of alternating single-mode runs, because single runs of the
# benchmark vary by +-20% on a shared 2-core machine. ROUNDS=7 BENCHTIME=300x.
bench-tracking:
	./bench/tracking-ratio.sh $(or $(ROUNDS),7) $(or $(BENCHTIME),300x)

# Forecast accuracy against R forecast 8.20 on M3 (prints the table).
accuracy:
	$(GO) test ./forecast -run TestM3Accuracy -v -count=1

clean:
	rm -rf bin data

# Failover drill: a local 3-process cluster on 127.0.0.1, the leader
# SIGKILLed 10 times under steady ingest; prints per-cycle detect/elect/
# failover ms with median and worst, checks no acked row is lost or
# duplicated and every node tells the same object journey (non-zero exit
# if not) and writes bench/out/drill.json.
drill: build
	./$(BIN) drill failover --nodes 3 --cycles 10 --json bench/out/drill.json

# Partition drill (root only; skips with a message otherwise): 3 nodes in
# network namespaces df-n1..3 on a bridge in df-br (10.77.0.0/24, nothing
# in the root namespace), the leader cut off, minority/majority behaviour
# and convergence after healing checked; namespaces always removed.
drill-netns: build
	DEMANDFLOW_BIN=$(abspath $(BIN)) $(GO) test -tags drill -count=1 -v -timeout 10m -run TestPartition ./bench/netns/
