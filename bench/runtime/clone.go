package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// cloneBinary repeats what berth-runtime does for every container init and
// exec (runtime/container/spawn.go, cloneSelf), protecting against
// CVE-2019-5736: memfd_create, sendfile the whole binary into it, add the
// seals. It opens path instead of /proc/self/exe so the copied binary is
// bin/berth-runtime, not this program. The caller closes the memfd; closing
// frees its pages, which the real runtime also pays for once the init has
// exec'd, so measurements include it.
func cloneBinary(path string) (*os.File, int64, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, 0, err
	}
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, 0, fmt.Errorf("memfd_create: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "berth-runtime")
	size := st.Size()
	for off := int64(0); off < size; {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(size-off))
		if err != nil {
			dst.Close()
			return nil, 0, fmt.Errorf("sendfile: %w", err)
		}
		if n == 0 {
			break
		}
		off += int64(n)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return nil, 0, &sealError{err}
	}
	return dst, size, nil
}

// sealError is F_ADD_SEALS failing. With EBUSY the kernel still saw extra
// references on the memfd's pages (e.g. in another CPU's LRU batch right
// after sendfile filled them); berth-runtime would fail the container then.
type sealError struct{ err error }

func (e *sealError) Error() string { return "add seals: " + e.err.Error() }
func (e *sealError) Unwrap() error { return e.err }

// cloneResult is the cost of one cloneBinary plus close, over n runs.
type cloneResult struct {
	Binary      string  `json:"binary"`
	BinaryBytes int64   `json:"binary_bytes"`
	N           int     `json:"n"`
	MedianUs    float64 `json:"median_us"`
	P10Us       float64 `json:"p10_us"`
	P90Us       float64 `json:"p90_us"`
	// MiBPerSec is the copy rate at the median.
	MiBPerSec float64 `json:"mib_per_s"`
	// SealEBUSY counts attempts whose F_ADD_SEALS failed with EBUSY; they are
	// not timed and are repeated.
	SealEBUSY int `json:"seal_ebusy"`
}

// measureClone times n copies after a few discarded warm-up ones (which also
// bring the binary into the page cache).
func measureClone(path string, n int) (cloneResult, error) {
	res := cloneResult{Binary: path, N: n}
	var us []float64
	for i := -5; i < n; i++ {
		t0 := time.Now()
		f, size, err := cloneBinary(path)
		var se *sealError
		if errors.As(err, &se) && errors.Is(err, unix.EBUSY) && res.SealEBUSY < n {
			res.SealEBUSY++
			i--
			continue
		}
		if err != nil {
			return res, err
		}
		f.Close()
		d := time.Since(t0)
		res.BinaryBytes = size
		if i >= 0 {
			us = append(us, float64(d.Nanoseconds())/1e3)
		}
	}
	s := summarize(us)
	res.MedianUs, res.P10Us, res.P90Us = s.Median, s.P10, s.P90
	if s.Median > 0 {
		res.MiBPerSec = float64(res.BinaryBytes) / (1 << 20) / (s.Median / 1e6)
	}
	return res, nil
}
