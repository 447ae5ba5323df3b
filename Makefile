# fhir-bridge developer targets. `make test` is the whole suite: it starts a
# real PostgreSQL and a real Kafka broker on loopback (.ci/testenv.sh), runs
# every test against them, and stops them again.
GO ?= go

.PHONY: test check unit demo build golden fuzz bench

test: check
	bash .ci/testenv.sh $(GO) test -race -count=1 ./...

# Formatting and vet; part of `make test`.
check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Unit tests only; integration tests skip without the services.
unit:
	$(GO) test -race ./...

demo:
	$(GO) run ./cmd/fhir-bridge demo

build:
	$(GO) build -o bin/fhir-bridge ./cmd/fhir-bridge

# Load benchmark (docs/benchmarks.md): the bridge against real Kafka and
# PostgreSQL and out-of-process sinks, with same-run ceiling lanes, e.g.
# make bench BENCHFLAGS='--rate 10000 --duration 2m --mllp --out docs/benchmarks.md'
BENCHFLAGS ?=
bench:
	TESTENV_PG_DURABLE=1 bash .ci/testenv.sh $(GO) run ./bench/loadbench $(BENCHFLAGS)

# Rewrite golden files after an intended output change; review the diff.
golden:
	$(GO) test ./mappers/... ./hl7/... -run Golden -update

FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParseNative -fuzztime=$(FUZZTIME) ./mappers
	$(GO) test -run='^$$' -fuzz=FuzzOutcomeText -fuzztime=$(FUZZTIME) ./fhir
	$(GO) test -run='^$$' -fuzz=FuzzParseRetryAfter -fuzztime=$(FUZZTIME) ./fhir
	$(GO) test -run='^$$' -fuzz=FuzzParseACK -fuzztime=$(FUZZTIME) ./hl7
	$(GO) test -run='^$$' -fuzz=FuzzReadFrame -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s ./hl7
	$(GO) test -run='^$$' -fuzz=FuzzEscapeRoundTrip -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s ./hl7
	$(GO) test -run='^$$' -fuzz=FuzzEncode -fuzztime=$(FUZZTIME) ./hl7
	$(GO) test -run='^$$' -fuzz=FuzzDeviceTemplateMap -fuzztime=$(FUZZTIME) ./mappers/medtech
	$(GO) test -run='^$$' -fuzz=FuzzLoadDeviceTemplate -fuzztime=$(FUZZTIME) ./mappers/medtech
	$(GO) test -run='^$$' -fuzz=FuzzJSONPath -fuzztime=$(FUZZTIME) ./mappers/medtech
