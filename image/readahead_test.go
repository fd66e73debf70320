package image

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
	"time"
)

func TestReadahead(t *testing.T) {
	data := make([]byte, 5*readaheadChunk+12345)
	rand.New(rand.NewSource(1)).Read(data)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		produce func(w io.Writer) error
		want    []byte
		wantErr error
	}{
		{"all", func(w io.Writer) error { _, err := io.Copy(w, bytes.NewReader(data)); return err }, data, nil},
		{"small writes", func(w io.Writer) error {
			for i := 0; i < len(data); i += 1000 {
				if _, err := w.Write(data[i:min(i+1000, len(data))]); err != nil {
					return err
				}
			}
			return nil
		}, data, nil},
		{"empty", func(w io.Writer) error { return nil }, nil, nil},
		{"error after data", func(w io.Writer) error {
			w.Write(data[:100])
			return boom
		}, nil, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := readahead(tc.produce)
			defer r.Close()
			got, err := io.ReadAll(r)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

// TestReadaheadCloseStopsProducer checks that Close returns while the
// producer still has data to write, and that the producer sees an error.
func TestReadaheadCloseStopsProducer(t *testing.T) {
	stopped := make(chan error, 1)
	r := readahead(func(w io.Writer) error {
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				stopped <- err
				return err
			}
		}
	})
	io.ReadFull(r, make([]byte, 10))
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := <-stopped; !errors.Is(err, errReadaheadClosed) {
		t.Errorf("producer saw %v", err)
	}
}
