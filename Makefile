# Every module of the workspace; `./...` does not cross module boundaries from the root.
PKGS := ./pkg/... ./schema/... ./receiver/... ./writer/... ./tools/... ./testsupport/... ./testsupport/dbtest/...

.PHONY: test check build bench run

# The reliability suite (tools/reliability) runs on its own, verbosely, so that the one-line
# summary of each scenario shows even when it passes; its full output shows when it fails.
RELIABILITY := ./tools/reliability/

# test is what CI runs: formatting, vet, then every test with the race detector.
test: check
	go test -race -count=1 -timeout 12m $$(go list $(PKGS) | grep -v /tools/reliability$$)
	@out=$$(mktemp); go test -race -count=1 -timeout 10m -v $(RELIABILITY) >$$out 2>&1; rc=$$?; \
	if [ $$rc -eq 0 ]; then grep -E '^(Test[^ ]*: summary:|ok )' $$out; else cat $$out; fi; rm -f $$out; exit $$rc

check:
	@unformatted=$$(gofmt -l pkg schema receiver writer tools testsupport); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet $(PKGS)

build:
	go build -o bin/ ./receiver/... ./writer/...

bench:
	go test -run '^$$' -bench . -benchmem $(PKGS)

# run starts the whole pipeline on this machine and prints where Sora should send its stats;
# Ctrl-C stops it. deploy/local/run.sh says which NATS it uses and which variables it reads.
run:
	./deploy/local/run.sh
