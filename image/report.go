package image

import (
	"io"

	"github.com/berth-engine/berth/internal/progress"
	"github.com/opencontainers/go-digest"
)

// reporter wraps an optional *progress.Progress so that the store's code
// never checks for nil.
type reporter struct{ p *progress.Progress }

func (r reporter) item(d digest.Digest, action string, total int64) *item {
	if r.p == nil {
		return &item{}
	}
	return &item{it: r.p.Item(short(d), action, total)}
}

func (r reporter) printf(format string, args ...any) {
	if r.p != nil {
		r.p.Printf(format, args...)
	}
}

type item struct{ it *progress.Item }

func (i *item) action(a string) {
	if i.it != nil {
		i.it.SetAction(a)
	}
}

func (i *item) set(n int64) {
	if i.it != nil {
		i.it.Set(n)
	}
}

func (i *item) done(final string) {
	if i.it != nil {
		i.it.Done(final)
	}
}

func (i *item) fail(err error) {
	if i.it != nil {
		i.it.Fail(err)
	}
}

// reader counts what r yields into the item.
func (i *item) reader(r io.Reader) io.Reader {
	if i.it == nil {
		return r
	}
	return i.it.Reader(r)
}
