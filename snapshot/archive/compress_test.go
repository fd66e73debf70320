package archive

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestDecompressStream(t *testing.T) {
	plain := []byte(strings.Repeat("layer content ", 1000))
	var gz, zs, gz2 bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	// Two concatenated gzip members read as one stream.
	for _, half := range [][]byte{plain[:100], plain[100:]} {
		w := gzip.NewWriter(&gz2)
		w.Write(half)
		w.Close()
	}
	zw, err := zstd.NewWriter(&zs)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(plain)
	zw.Close()
	for _, tc := range []struct {
		name string
		in   []byte
		want Compression
	}{
		{"plain", plain, Uncompressed},
		{"gzip", gz.Bytes(), Gzip},
		{"gzip-multistream", gz2.Bytes(), Gzip},
		{"zstd", zs.Bytes(), Zstd},
		{"empty", nil, Uncompressed},
		{"short", []byte{0x1f}, Uncompressed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, c, err := DecompressStream(bytes.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if c != tc.want {
				t.Errorf("compression %v, want %v", c, tc.want)
			}
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			want := plain
			if tc.want == Uncompressed {
				want = tc.in
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
	for _, in := range [][]byte{[]byte("BZh91AY&SY"), {0xfd, '7', 'z', 'X', 'Z', 0, 0}} {
		if _, _, err := DecompressStream(bytes.NewReader(in)); !errors.Is(err, ErrUnsupportedCompression) {
			t.Errorf("%q: want ErrUnsupportedCompression, got %v", in, err)
		}
	}
	// Corrupt gzip is an error when read, not a silent truncation.
	bad := append([]byte(nil), gz.Bytes()...)
	bad[len(bad)/2] ^= 0xff
	rc, _, err := DecompressStream(bytes.NewReader(bad))
	if err == nil {
		_, err = io.ReadAll(rc)
	}
	if err == nil {
		t.Error("corrupt gzip read without error")
	}
}
