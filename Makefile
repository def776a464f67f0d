# Demandflow. The two commands that matter: `make demo` and `make test`.
GO       ?= go
BIN      := bin/demandflow
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Tests run with the race detector; -p 2 matches the 2-core CI machine.
TESTFLAGS ?= -race -p 2 -timeout 20m

.PHONY: all build demo test test-short vet fmt bench accuracy drill clean

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

# Micro-benchmarks of the hot paths (decoders, apply, reads, HTTP ingest).
# Figures go to bench/RESULTS.md by hand with the command that made them.
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s -cpu 1 ./stream/
	$(GO) test -run '^$$' -bench . -benchtime 2s ./cluster/ ./node/

# Forecast accuracy against R forecast 8.20 on M3 (prints the table).
accuracy:
	$(GO) test ./forecast -run TestM3Accuracy -v -count=1

clean:
	rm -rf bin data
