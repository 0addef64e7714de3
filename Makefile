# Every module of the workspace; `./...` does not cross module boundaries from the root.
PKGS := ./pkg/... ./schema/... ./receiver/... ./writer/... ./tools/... ./testsupport/... ./testsupport/dbtest/...

.PHONY: test check build bench run

# The reliability suite (tools/reliability) runs on its own, after the rest, so that its
# scenarios have the machine to themselves; the one-line summary of each scenario shows
# even when it passes (testreport -show).
RELIABILITY := ./tools/reliability/

# The release build (build, run, deploy/Dockerfile, kohaku-bench) turns on Go's vector package,
# which the JSON checks use on amd64 (README "Build"); the packages that hold those checks
# are tested a second time in that build.
RELEASE_EXPERIMENT := GOEXPERIMENT=simd
VECTOR_PKGS := ./pkg/jsonscan/ ./pkg/sora/ ./pkg/normalize/

# test is what CI runs: formatting, vet, then every test with the race detector, and the
# vector packages' tests again as released. The go test runs report as JSON to
# tools/cmd/testreport, which prints what go test without -v would, then every skipped
# test with its reason and a count of passed, failed and skipped.
test: check
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	go build -o "$$tmp/testreport" ./tools/cmd/testreport || exit 1; \
	{ go test -json -race -count=1 -timeout 12m $$(go list $(PKGS) | grep -v /tools/reliability$$) 2>&1 && \
	  $(RELEASE_EXPERIMENT) go test -json -race -count=1 -timeout 5m $(VECTOR_PKGS) 2>&1; echo $$? >"$$tmp/unit"; \
	  if [ "$$(cat "$$tmp/unit")" = 0 ]; then go test -json -race -count=1 -timeout 10m $(RELIABILITY) 2>&1; echo $$? >"$$tmp/reliability"; \
	  else echo "reliability suite not run: the tests above failed"; echo 1 >"$$tmp/reliability"; fi; } \
	| "$$tmp/testreport" -show '^Test[^ ]*: summary:'; rc=$$?; \
	[ $$rc -eq 0 ] && [ "$$(cat "$$tmp/unit")" = 0 ] && [ "$$(cat "$$tmp/reliability")" = 0 ]

check:
	@unformatted=$$(gofmt -l pkg schema receiver writer tools testsupport); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet $(PKGS)
	$(RELEASE_EXPERIMENT) go vet $(VECTOR_PKGS)

build:
	$(RELEASE_EXPERIMENT) go build -o bin/ ./receiver/... ./writer/...

bench:
	go test -run '^$$' -bench . -benchmem $(PKGS)

# run starts the whole pipeline on this machine and prints where Sora should send its stats;
# Ctrl-C stops it. deploy/local/run.sh says which NATS it uses and which variables it reads.
run:
	./deploy/local/run.sh
