# tokenward: the two commands a newcomer needs are `make run` and `make test`.
GO ?= go

.PHONY: run build test test-faults lint bench bench-http fuzz scan-eval clean

# Run tokenward on the embedded default: SQLite in a throwaway data directory.
# ARGS adds server flags (the README test passes --addr 127.0.0.1:0).
run:
	$(GO) run ./cmd/tokenward server --dev $(ARGS)

# `tokenward version`, /v1/health and tokenward_build_info read these,
# linked in with -X (internal/buildinfo). Without them the binary reports
# what the Go toolchain stamped: the module version and vcs.revision/time.
# VERSION is the nearest tag (empty without tags, so the stamp is kept);
# pass DATE=... for a reproducible build.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BUILDINFO = github.com/tokenward/tokenward/internal/buildinfo
LDFLAGS = -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).commit=$(COMMIT) -X $(BUILDINFO).date=$(DATE)

# Two binaries: bin/tokenward, the client (-tags tokenward_client: the CLI
# without the server's libraries, under half the size, quicker to start;
# what a pipeline image needs), and bin/tokenward-server, the full build
# (the server and every command), to which the client hands the commands it
# lacks (server, init, migrate, bench) when installed beside it. The client
# is static (CGO_ENABLED=0): it runs in any image (glibc, Alpine's musl,
# distroless, scratch), and starts without the dynamic loader and libc
# (docs/benchmarks.md, "CLI start-up").
build:
	CGO_ENABLED=0 $(GO) build -tags tokenward_client -ldflags '$(LDFLAGS)' -o bin/tokenward ./cmd/tokenward
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/tokenward-server ./cmd/tokenward

# The whole test suite, as CI runs it: format, vet, staticcheck, gosec, then every
# test with the race detector (PostgreSQL tests start their own cluster).
# TOKENWARD_FAULTS=1 includes the slow fault-injection tests (about 30 s),
# which a plain `go test` skips.
# Last, a short run of every fuzz target (5000 inputs each, about 3 minutes
# on 2 cores): counted in inputs, not seconds, so a loaded machine runs the
# same amount (a time budget of a second or two trips Go's fuzzing
# coordinator with "context deadline exceeded").
test: lint
	TOKENWARD_FAULTS=1 $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=5000x FUZZMINIMIZETIME=100x

# The fault-injection tests alone (docs/faults.md): the server killed under
# load, PostgreSQL restarted, a rotation crashed at every step, the audit
# journal after kill -9, disk full, a read-only data directory, the master
# key missing or wrong, damaged ciphertext rows, clock jumps. Disk full and
# the read-only mount need root (mount -t tmpfs) and are skipped without it.
# TOKENWARD_FAULT_SEED=N repeats a kill test's kill points (its log says N).
FAULTS = TestKillUnderMixedLoad|TestPostgresRestartUnderLoad|TestRotationSurvivesServerCrashAtEveryStep|TestDiskFull|TestReadOnlyDataDir|TestMasterKeyAtStart|TestCorruptedCiphertextRow
test-faults:
	TOKENWARD_FAULTS=1 $(GO) test -race -count=1 -timeout 10m -run '^($(FAULTS))$$' ./cmd/tokenward/
	$(GO) test -race -count=1 -run '^TestScripts$$/^audit_journal$$' ./cmd/tokenward/
	$(GO) test -race -count=1 -run '^TestClockJumps' ./internal/core/
	$(GO) test -race -count=1 -run '^TestDiskFullIsUnavailable$$' ./internal/sqlite/

# gosec, the security linter, runs with no install step: `go tool` builds
# the version pinned in tools/gosec/go.mod (its own module, so that its ~40
# dependencies, gRPC and cloud SDKs among them, stay out of tokenward's
# go.mod and go.sum). A false positive is annotated where it is, with the
# reason: `// #nosec G115 -- versions are positive`. Two rule classes are
# off, each for a reason:
#   G104 (unchecked error): errcheck's style rule, not a security check;
#        its ~150 hits are deferred Close calls and best-effort writes. The
#        errors that matter for security fail closed and are tested (an
#        audit record that fails refuses the request).
#   G304 (file path from a variable): every file tokenward opens is named
#        by its operator (flags, config, the data directory). G703, the
#        taint-tracking rule that flags a path from a request, stays on.
# testdata directories hold the scanner's corpus of fake credentials and
# test programs. A new finding fails lint (docs/security.md).
GOSEC = $(GO) tool -modfile=tools/gosec/go.mod gosec
GOSECFLAGS = -quiet -exclude=G104,G304 -exclude-dir=testdata

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt'd:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags tokenward_client ./cmd/tokenward/
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags tokenward_client ./cmd/tokenward/
	$(GOSEC) $(GOSECFLAGS) ./...
	$(GOSEC) $(GOSECFLAGS) -tags tokenward_client ./cmd/tokenward/

# Benchmarks print ratios against a baseline measured in the same run.
bench:
	$(GO) test -run '^$$' -bench '^BenchmarkSecret(Read|Write)$$' -benchtime 3000x ./internal/httpapi/
	$(GO) test -run '^$$' -bench '^BenchmarkAuditedSecretRead' -benchtime 20000x ./internal/httpapi/
	$(GO) test -run '^$$' -bench CLISecretGet -benchtime 200x ./cmd/tokenward/
	$(GO) test -run '^$$' -bench 'PlainCopy|Redactor' -benchtime 20x ./internal/inject/
	$(GO) run ./internal/scan/cmd/scanbench -tree "$$($(GO) env GOROOT)/src"
	$(GO) run ./internal/scan/cmd/scanbench -git -commits 3000

# The real server (audit on, SQLite) under wrk, beside a bare net/http
# handler: reads, environment fetches and just-in-time-token reads at
# concurrency 1/16/64. Needs wrk on PATH (it installs nothing). Not part of
# `make test`.
bench-http:
	$(GO) run ./internal/httpapi/cmd/httpbench

# Precision and recall of the built-in scan rules on the labelled corpus
# (testdata/scan/corpus), per rule, compared with testdata/scan/eval.golden;
# a rule whose recall falls below its golden value fails. UPDATE=1 rewrites
# the golden file after a rule change (review its diff: gains and losses).
# RULES=DIR evaluates the rule files in DIR instead (say, the rules before a
# change), without the golden comparison.
scan-eval:
	SCAN_EVAL_RULES=$(RULES) $(GO) test -count=1 -run '^TestCorpusEval$$' -v ./internal/scan/ $(if $(UPDATE),-args -update)

# Every fuzz target of every package, FUZZTIME each (FUZZ=regexp picks
# targets by name). The list comes from `go test -list`, so a new target is
# run without editing this file. `make test` runs it briefly (FUZZTIME=5000x);
# the seed corpora (f.Add and testdata/fuzz/FuzzX/) also run as ordinary tests. A failure
# leaves its input in the package's testdata/fuzz/FuzzX/; keep it as the
# reproducer with the fix. FUZZMINIMIZETIME bounds the minimizing of each
# new input, which otherwise stalls a short run.
FUZZTIME ?= 20s
FUZZMINIMIZETIME ?= 10s
FUZZ ?= .
fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for t in $$($(GO) test -list '^Fuzz' $$dir | grep '^Fuzz' | grep -E -- '$(FUZZ)'); do \
			echo "== $$dir $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$dir; \
		done; \
	done

clean:
	rm -rf bin
