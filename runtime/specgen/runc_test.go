package specgen

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// runcPath is the runc the generated documents are compared with.
const runcPath = "/usr/sbin/runc"

// requireRunc returns runcPath, skipping the test if runc is not installed,
// or failing it if the CI environment variable is "true".
func requireRunc(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(runcPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("runc is required in CI: %v", err)
		}
		t.Skipf("runc not available: %v", err)
	}
	return runcPath
}

// runcJSON runs runc with args in a temporary directory and returns the
// decoded contents of the file it writes there (if file is not empty) or
// of its standard output.
func runcJSON(t *testing.T, file string, args ...string) map[string]any {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(requireRunc(t), args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("runc %v: %v", args, err)
	}
	if file != "" {
		if out, err = os.ReadFile(filepath.Join(dir, file)); err != nil {
			t.Fatal(err)
		}
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("decoding output of runc %v: %v", args, err)
	}
	return v
}

// toJSONMap returns v as it reads once encoded to JSON and decoded into
// generic values.
func toJSONMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// jsonDiff returns one line for each difference between the generic JSON
// values got and want, naming the field.
func jsonDiff(path string, got, want any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var diffs []string
		for _, k := range sorted {
			gv, gok := g[k]
			wv, wok := w[k]
			switch {
			case !gok:
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing, want %v", path, k, wv))
			case !wok:
				diffs = append(diffs, fmt.Sprintf("%s.%s: unexpected %v", path, k, gv))
			default:
				diffs = append(diffs, jsonDiff(path+"."+k, gv, wv)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			break
		}
		var diffs []string
		for i := 0; i < max(len(g), len(w)); i++ {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= len(g):
				diffs = append(diffs, fmt.Sprintf("%s: missing, want %v", p, w[i]))
			case i >= len(w):
				diffs = append(diffs, fmt.Sprintf("%s: unexpected %v", p, g[i]))
			default:
				diffs = append(diffs, jsonDiff(p, g[i], w[i])...)
			}
		}
		return diffs
	}
	if !reflect.DeepEqual(got, want) {
		return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
	}
	return nil
}

// applyDocumentedDifferences edits runc's configuration into the one berth
// is documented to produce: a different ociVersion and hostname, and the
// ExtraMaskedPaths appended to the masked paths (unless runc masks them
// already).
func applyDocumentedDifferences(t *testing.T, runc map[string]any) {
	t.Helper()
	runc["ociVersion"] = toJSONMap(t, Default())["ociVersion"]
	runc["hostname"] = DefaultHostname
	linux, ok := runc["linux"].(map[string]any)
	if !ok {
		t.Fatalf("runc configuration has no linux object")
	}
	masked, _ := linux["maskedPaths"].([]any)
	for _, p := range ExtraMaskedPaths {
		if !slices.Contains(masked, any(p)) {
			masked = append(masked, p)
		}
	}
	linux["maskedPaths"] = masked
}

func compareWithRunc(t *testing.T, got any, runc map[string]any) {
	t.Helper()
	for _, d := range jsonDiff("", toJSONMap(t, got), runc) {
		t.Error(d)
	}
}
