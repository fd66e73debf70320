package image

import (
	"io"
	"sync"
)

// Read-ahead sizing: chunks of 1 MiB, at most 8 in flight per layer.
const (
	readaheadChunk = 1 << 20
	readaheadDepth = 8
)

// readahead runs produce in its own goroutine, which writes into the
// returned reader's pipeline in chunks, so that a layer's download,
// decompression and hashing proceed on one core while its files are
// written on another. The reader returns what produce wrote, then produce's
// error (io.EOF when it returned nil). Close stops produce (its writes fail)
// and waits for it.
func readahead(produce func(w io.Writer) error) *readaheadReader {
	r := &readaheadReader{
		chunks: make(chan []byte, readaheadDepth),
		free:   make(chan []byte, readaheadDepth+2),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go func() {
		defer close(r.done)
		cw := &chunkWriter{r: r}
		err := produce(cw)
		if err == nil {
			err = cw.flush()
		}
		if err == nil {
			err = io.EOF
		}
		r.err = err
		close(r.chunks)
	}()
	return r
}

type readaheadReader struct {
	chunks chan []byte
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	err    error // set by the producer before chunks is closed
	cur    []byte
	buf    []byte
	once   sync.Once
}

func (r *readaheadReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.buf != nil {
			select {
			case r.free <- r.buf[:cap(r.buf)]:
			default:
			}
			r.buf = nil
		}
		b, ok := <-r.chunks
		if !ok {
			return 0, r.err
		}
		r.buf, r.cur = b, b
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Close stops the producer and waits for it to return.
func (r *readaheadReader) Close() error {
	r.once.Do(func() { close(r.stop) })
	for range r.chunks {
	}
	<-r.done
	return nil
}

// errReadaheadClosed is what the producer's writes return after Close.
var errReadaheadClosed = io.ErrClosedPipe

// chunkWriter batches the producer's writes into chunks.
type chunkWriter struct {
	r   *readaheadReader
	cur []byte
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if w.cur == nil {
			select {
			case b := <-w.r.free:
				w.cur = b[:0]
			default:
				w.cur = make([]byte, 0, readaheadChunk)
			}
		}
		n := copy(w.cur[len(w.cur):cap(w.cur)], p)
		w.cur = w.cur[:len(w.cur)+n]
		p = p[n:]
		if len(w.cur) == cap(w.cur) {
			if err := w.flush(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

func (w *chunkWriter) flush() error {
	if len(w.cur) == 0 {
		return nil
	}
	select {
	case w.r.chunks <- w.cur:
		w.cur = nil
		return nil
	case <-w.r.stop:
		return errReadaheadClosed
	}
}
