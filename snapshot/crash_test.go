package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCrash kills a helper process at each persistence step, then reopens
// the root and checks that it is consistent and that the interrupted
// operation either happened entirely or not at all (and can be redone).
func TestCrash(t *testing.T) {
	ctx := context.Background()
	prepareBase := func(t *testing.T, s *Snapshotter) {
		addLayer(t, s, "base", "", file("f", "base"), dir("d"), file("d/g", "g"))
	}
	prepareActive := func(t *testing.T, s *Snapshotter) {
		prepareBase(t, s)
		if _, err := s.Prepare(ctx, "active", "base", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApplyLayer(ctx, "active", bytes.NewReader(mustLayer([]entry{file("f", "active")}))); err != nil {
			t.Fatal(err)
		}
	}
	absent := func(key string) func(*testing.T, *Snapshotter) {
		return func(t *testing.T, s *Snapshotter) {
			if _, err := s.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: %v, want ErrNotFound", key, err)
			}
		}
	}
	// viewSees checks, through a mount, that key (or a view of it) shows f.
	viewSees := func(t *testing.T, s *Snapshotter, key, f string) {
		t.Helper()
		info, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var m []Mount
		if info.Kind == KindCommitted {
			m, err = s.View(ctx, "check-"+key, key, nil)
		} else {
			m, err = s.Mounts(ctx, key)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(mountTemp(t, m), "f")); got != f {
			t.Fatalf("%s: f = %q, want %q", key, got, f)
		}
	}
	redoPrepare := func(t *testing.T, s *Snapshotter) {
		absent("new")(t, s)
		if _, err := s.Prepare(ctx, "new", "base", nil); err != nil {
			t.Fatal(err)
		}
		viewSees(t, s, "new", "base")
	}
	cases := []struct {
		scenario, step string
		drivers        []string
		setup          func(*testing.T, *Snapshotter)
		check          func(*testing.T, *Snapshotter)
	}{
		{"open", "create-db", nil, nil, func(t *testing.T, s *Snapshotter) {
			if _, err := s.Prepare(ctx, "k", "", nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"open", "probe-mounted", []string{DriverOverlay}, nil, nil},
		{"prepare", "create-reserved", nil, prepareBase, redoPrepare},
		{"prepare", "create-populated", nil, prepareBase, redoPrepare},
		{"prepare", "create-recorded", nil, prepareBase, func(t *testing.T, s *Snapshotter) {
			viewSees(t, s, "new", "base")
		}},
		{"view", "create-populated", nil, prepareBase, func(t *testing.T, s *Snapshotter) {
			absent("new")(t, s)
			if _, err := s.View(ctx, "new", "base", nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"view", "create-recorded", nil, prepareBase, func(t *testing.T, s *Snapshotter) {
			viewSees(t, s, "new", "base")
		}},
		{"commit", "commit-locked", nil, prepareActive, func(t *testing.T, s *Snapshotter) {
			absent("committed")(t, s)
			if info, err := s.Stat(ctx, "active"); err != nil || info.Kind != KindActive {
				t.Fatalf("active: %+v, %v", info, err)
			}
			if err := s.Commit(ctx, "committed", "active", nil); err != nil {
				t.Fatal(err)
			}
			viewSees(t, s, "committed", "active")
		}},
		{"commit", "commit-recorded", nil, prepareActive, func(t *testing.T, s *Snapshotter) {
			absent("active")(t, s)
			info, err := s.Stat(ctx, "committed")
			if err != nil || info.Kind != KindCommitted || info.Parent != "base" || info.Labels["l"] != "v" {
				t.Fatalf("committed: %+v, %v", info, err)
			}
			viewSees(t, s, "committed", "active")
		}},
		{"remove", "remove-unrecorded", nil, func(t *testing.T, s *Snapshotter) {
			prepareBase(t, s)
			addLayer(t, s, "victim", "base", file("f", "victim"))
		}, absent("victim")},
		{"remove", "remove-trashed", nil, func(t *testing.T, s *Snapshotter) {
			prepareBase(t, s)
			if _, err := s.Prepare(ctx, "victim", "base", nil); err != nil {
				t.Fatal(err)
			}
		}, absent("victim")},
		{"cleanup", "cleanup-trashed", nil, func(t *testing.T, s *Snapshotter) {
			prepareBase(t, s)
			if err := os.MkdirAll(s.path(snapshotsDir, "12345", "fs", "x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, s *Snapshotter) { viewSees(t, s, "base", "base") }},
		{"apply-kill", "", nil, prepareActive, func(t *testing.T, s *Snapshotter) {
			// The half-applied active snapshot is still there, and removable.
			if info, err := s.Stat(ctx, "active"); err != nil || info.Kind != KindActive {
				t.Fatalf("active: %+v, %v", info, err)
			}
			if err := s.Remove(ctx, "active"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		ds := c.drivers
		if ds == nil {
			ds = drivers
		}
		for _, driver := range ds {
			t.Run(c.scenario+"/"+c.step+"/"+driver, func(t *testing.T) {
				t.Parallel()
				root := newRoot(t)
				if c.setup != nil {
					c.setup(t, openRoot(t, root, driver))
				}
				runKilled(t, c.scenario, root, driver, c.step)
				s := openRoot(t, root, driver)
				checkRoot(t, s)
				if c.check != nil {
					c.check(t, s)
				}
				checkRoot(t, s)
			})
		}
	}
}
