# Every target runs with the Go toolchain go.mod needs: the machine's Go (1.26) sets
# GOTOOLCHAIN=local, and the Go module proxy serves go1.27.3.
export GOTOOLCHAIN := go1.27.3

# The end-to-end encryption tests use mautrix's pure-Go Olm (goolm), chosen by a build
# tag; without it mautrix's crypto package wants libolm through cgo.
export GOFLAGS := -tags=goolm

GO ?= go

.PHONY: run test check ci sqlc bench build

## run: run the server on the embedded PostgreSQL (data in ./data), migrating first
run:
	$(GO) run ./cmd/spelt serve --migrate

## build: build ./spelt
build:
	$(GO) build -o spelt ./cmd/spelt

## test: run every test (with the race detector) against a throwaway PostgreSQL cluster
test:
	$(GO) test -race -count=1 -timeout 20m ./...

## check: formatting, vet, and generated SQL code up to date
check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool sqlc diff

## sqlc: regenerate sql/gen from sql/queries and sql/migrations
sqlc:
	$(GO) tool sqlc generate

## bench: print the event-log, projection and room figures (see README)
bench:
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 30m ./eventlog/ ./projections/ ./cmd/spelt/

ci: check test
