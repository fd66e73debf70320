package main

import (
	"os"
	"path/filepath"
	"testing"
)

// berthRuntimeBinary is bin/berth-runtime of this checkout, or
// $BERTH_RUNTIME.
func berthRuntimeBinary(tb testing.TB) string {
	if p := os.Getenv("BERTH_RUNTIME"); p != "" {
		return p
	}
	p, err := filepath.Abs("../../bin/berth-runtime")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("no berth-runtime binary (run make build or set BERTH_RUNTIME): %v", err)
	}
	return p
}

// BenchmarkCloneSelf measures the per-container cost of berth-runtime's
// CVE-2019-5736 protection: memfd_create + sendfile of the binary + seals,
// and the close that frees the copy.
//
//	go test -run '^$' -bench CloneSelf ./bench/runtime/
func BenchmarkCloneSelf(b *testing.B) {
	bin := berthRuntimeBinary(b)
	var size int64
	for b.Loop() {
		f, n, err := cloneBinary(bin)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		size = n
	}
	b.SetBytes(size)
	b.ReportMetric(float64(size), "binary-bytes")
}

// TestCloneBinarySealed checks the copy is complete and sealed, so the
// benchmark measures the same work the runtime does.
func TestCloneBinarySealed(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, size, err := cloneBinary(self)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Fatalf("memfd has %d bytes, binary %d", st.Size(), size)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("write to sealed copy succeeded")
	}
}
