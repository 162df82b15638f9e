# Hotline's entry points. `make demo` and `make test` need nothing but Go and a shell.
GO      ?= go
PKGS    := ./...
TIMEOUT ?= 8m

.PHONY: all build demo test vet fmt-check bench fuzz soak plot clean

all: build

build:
	$(GO) build ./...
	$(GO) build -o bin/phoneswitch ./examples/phoneswitch
	$(GO) build -o bin/plugins/ ./examples/phoneswitch/plugins/phone-v1 ./examples/phoneswitch/plugins/phone-v2
	cd bin/plugins && sha256sum phone-v1 phone-v2 > SHA256SUMS

## demo: the phone-switch demo, end to end: a switch on v1 under load, an
## upgrade to v2 mid-call, a rollback, a canary, a SIGHUP; then a report.
demo: build
	bin/phoneswitch demo --in-process=false

## test: what CI runs: gofmt, go vet, every package under the race detector, then every
## benchmark once (b.N = 1: that each still runs and checks what it measures, not its speed),
## and the msgpack input check once more as a 32-bit program.
test: fmt-check vet
	$(GO) test -race -count=1 -timeout $(TIMEOUT) $(PKGS)
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 -timeout $(TIMEOUT) $(PKGS)
	GOARCH=386 $(GO) test -count=1 ./internal/msgpackcheck/   # its length checks matter where int is 32 bits

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi

## bench: every benchmark, each beside its baseline in one `go test -bench` run.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./actor/
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./fsm/
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./supervisor/
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./internal/wire/ ./internal/pluginrpc/
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./plugin/
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./flags/
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./internal/handoff/
	$(GO) test -run '^$$' -bench BenchmarkHandoff -benchtime 5x -count=1 ./upgrade/
	$(GO) test -run '^$$' -bench Upgrade10k -benchtime 10x -count=1 ./upgrade/
	$(GO) test -run '^$$' -bench ShadowOverhead -benchtime 20000x -count=1 ./upgrade/
	$(GO) run ./internal/benchprog/idlemem -n 1000000

## fuzz: every fuzz target, each for FUZZTIME (default 15s); what it finds lands in testdata/fuzz.
FUZZTIME ?= 15s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## soak: the chaos soak (doc/reliability.md): the switch under load while a chaos driver upgrades,
## rolls back, kills and hangs plugins and restarts the binary; SOAK=10m for longer, SEED=N to replay.
SOAK       ?= 2m
soak: build
	$(GO) build -o bin/soak-plugins/ ./examples/phoneswitch/plugins/phone-chaos
	bin/phoneswitch soak --duration $(SOAK) $(if $(SEED),--seed $(SEED))

## plot: event latency across an all-at-once and a rolling upgrade, drawn into doc/upgrade-latency.png
## (doc/latencyplot is its own module, so gonum/plot is not a dependency of Hotline).
plot:
	cd doc/latencyplot && $(GO) run . -o ../upgrade-latency.png

clean:
	rm -rf bin

## bench-restart: wrk against the health endpoint (and a plain one) while the binary replaces
## itself on SIGHUP, ten times in 20 s; figures in doc/benchmarks.md. Part of `make bench`.
.PHONY: bench-restart
RESTARTBENCH := ./bin/restartbench -duration 20s -sighups 10 -threads 2 -connections 50
bench-restart:
	command -v wrk || (apt-get update && apt-get install -y wrk)
	$(GO) build -o bin/restartbench ./upgrade/internal/restartbench
	$(RESTARTBENCH) -path /healthz
	$(RESTARTBENCH) -path /healthz -lame-duck 500ms
	$(RESTARTBENCH) -path /hello -lame-duck 500ms

bench: bench-restart
