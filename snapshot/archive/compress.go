package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the compression of a layer stream.
type Compression int

const (
	// Uncompressed is a plain tar stream.
	Uncompressed Compression = iota
	// Gzip is gzip (application/vnd.oci.image.layer.v1.tar+gzip).
	Gzip
	// Zstd is zstandard (application/vnd.oci.image.layer.v1.tar+zstd).
	Zstd
)

// String returns "uncompressed", "gzip" or "zstd".
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// ErrUnsupportedCompression is returned (wrapped) by [DecompressStream] for
// bzip2 and xz streams, which OCI layers do not use.
var ErrUnsupportedCompression = errors.New("unsupported compression")

// MaxZstdWindow bounds the window (and so the memory) a zstd stream may
// ask for: 128 MiB, what `zstd --long=27` uses.
const MaxZstdWindow = 128 << 20

var (
	magicGzip  = []byte{0x1f, 0x8b, 0x08}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte{'B', 'Z', 'h'}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// DetectCompression reports the compression of a stream from its first
// bytes (at least 6 for a sure answer); unknown data is Uncompressed.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return Gzip
	case bytes.HasPrefix(head, magicZstd):
		return Zstd
	case len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18:
		// A zstd skippable frame (0x184D2A5?), as seekable formats
		// put first.
		return Zstd
	}
	return Uncompressed
}

// DecompressStream detects the compression of r by its magic bytes and
// returns a reader of the decompressed stream. Close releases the
// decompressor (it does not close r). Concatenated gzip members are read
// as one stream, as gzip(1) does.
func DecompressStream(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(magicXz))
	if err != nil && err != io.EOF {
		return nil, Uncompressed, fmt.Errorf("archive: detect compression: %w", err)
	}
	switch c := DetectCompression(head); c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("archive: open gzip stream: %w", err)
		}
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderMaxWindow(MaxZstdWindow),
			zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, c, fmt.Errorf("archive: open zstd stream: %w", err)
		}
		return zstdReadCloser{zr}, c, nil
	}
	if (bytes.HasPrefix(head, magicBzip2) && len(head) > 3 && head[3] >= '1' && head[3] <= '9') ||
		bytes.HasPrefix(head, magicXz) {
		return nil, Uncompressed, fmt.Errorf("archive: %w (bzip2 or xz)", ErrUnsupportedCompression)
	}
	return io.NopCloser(br), Uncompressed, nil
}

// zstdReadCloser adapts zstd.Decoder, whose Close returns nothing.
type zstdReadCloser struct{ d *zstd.Decoder }

func (z zstdReadCloser) Read(p []byte) (int, error) { return z.d.Read(p) }

func (z zstdReadCloser) Close() error {
	z.d.Close()
	return nil
}
