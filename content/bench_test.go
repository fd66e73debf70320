package content

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
)

// BenchmarkIngest measures writing and committing a 64 MiB blob (hashing,
// writing to the page cache, fsync, publication), then deleting it (not
// timed). "stream" reads the source in 1 MiB chunks, as a pull does from a
// network body; "onewrite" hands the whole blob to a single Write.
func BenchmarkIngest(b *testing.B) {
	const size = 64 << 20
	data := testData(size, 1)
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		for _, mode := range []string{"stream", "onewrite"} {
			b.Run(string(alg)+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				s := newStore(b)
				dgst := alg.FromBytes(data)
				b.SetBytes(size)
				for b.Loop() {
					var r io.Reader = bytes.NewReader(data)
					if mode == "stream" {
						r = struct{ io.Reader }{r} // hide WriterTo: io.Copy uses ReadFrom
					}
					if err := WriteBlob(ctx, s, "bench", r, dgst, size); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := s.Delete(ctx, dgst); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
}
