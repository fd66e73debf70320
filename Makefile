# berth build and test entry points. `make` builds, `make test` runs every test.
GO       ?= go
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

export PATH := $(shell $(GO) env GOROOT)/bin:$(PATH)

.PHONY: all build install uninstall test unit integration conformance-runtime lint fmt clean

all: build

build: bin/berth bin/berth-runtime

# Always rebuilt; go's own cache makes that cheap.
.PHONY: bin/berth bin/berth-runtime
bin/berth:
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/berth

# The runtime links libseccomp through cgo (DESIGN.md: lean, separate binary).
bin/berth-runtime:
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/berth-runtime

install: build
	install -D -m 0755 bin/berth $(DESTDIR)$(PREFIX)/bin/berth
	install -D -m 0755 bin/berth-runtime $(DESTDIR)$(PREFIX)/bin/berth-runtime

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/berth $(DESTDIR)$(PREFIX)/bin/berth-runtime

# Every test: formatting and static checks, unit tests with the race
# detector, root integration tests that run real containers (and drive
# podman, containerd and dockerd with berth-runtime), and the OCI
# runtime-tools conformance gate.
test: build lint unit integration conformance-runtime

unit:
	$(GO) test -race -count=1 ./...

integration: build
	BERTH=$(CURDIR)/bin/berth BERTH_RUNTIME=$(CURDIR)/bin/berth-runtime $(GO) test -count=1 -tags integration -timeout 20m ./test/...

conformance-runtime: build
	./hack/runtime-conformance.sh $(CURDIR)/bin/berth-runtime

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) vet -tags integration ./test/...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags integration ./test/...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
