package cgroup

import (
	"strings"
	"testing"
)

func TestResolvePath(t *testing.T) {
	tests := []struct {
		name, path, id, parent string
		want                   string
		wantErr                string
	}{
		{name: "empty uses parent and id", id: "ctr1", want: "/berth/ctr1"},
		{name: "empty with custom parent", id: "ctr1", parent: "/custom/sub/", want: "/custom/sub/ctr1"},
		{name: "relative", path: "pod1/ctr1", id: "x", want: "/berth/pod1/ctr1"},
		{name: "relative cleaned", path: "./pod1//ctr1/", want: "/berth/pod1/ctr1"},
		{name: "relative with inner dotdot", path: "pod1/../ctr1", want: "/berth/ctr1"},
		{name: "relative escaping parent", path: "../escape", wantErr: "escapes the parent"},
		{name: "relative escaping to root", path: "../..", wantErr: "escapes the parent"},
		{name: "absolute as is", path: "/machine/ctr1", id: "x", want: "/machine/ctr1"},
		{name: "absolute cleaned", path: "/machine//a/../ctr1/", want: "/machine/ctr1"},
		{name: "absolute with colons is a path", path: "/a:b:c", want: "/a:b:c"},
		{name: "absolute root refused", path: "/", wantErr: "root cgroup"},
		{name: "absolute dotdot to root refused", path: "/a/..", wantErr: "root cgroup"},
		{name: "relative parent itself", path: ".", want: "/berth"},
		{name: "empty id", wantErr: "empty name"},
		{name: "id with slash", id: "a/b", wantErr: "contains '/'"},
		{name: "id dotdot", id: "..", wantErr: "invalid name"},
		{name: "relative parent refused", id: "c", parent: "berth", wantErr: "must be an absolute path"},
		{name: "systemd", path: "system.slice:berth:abc", want: "/system.slice/berth-abc.scope"},
		{name: "systemd nested slice", path: "machine-berth.slice:berth:abc", want: "/machine.slice/machine-berth.slice/berth-abc.scope"},
		{name: "systemd deep slice", path: "a-b-c.slice:p:n", want: "/a.slice/a-b.slice/a-b-c.slice/p-n.scope"},
		{name: "systemd root slice", path: "-.slice:berth:abc", want: "/berth-abc.scope"},
		{name: "systemd default slice", path: ":berth:abc", want: "/system.slice/berth-abc.scope"},
		{name: "systemd no prefix", path: "user.slice::abc", want: "/user.slice/abc.scope"},
		{name: "systemd name is slice", path: "system.slice::sub.slice", want: "/system.slice/sub.slice"},
		{name: "systemd bad slice suffix", path: "system:berth:abc", wantErr: "invalid slice name"},
		{name: "systemd bad slice dashes", path: "a--b.slice:berth:abc", wantErr: "invalid slice name"},
		{name: "systemd slash in slice", path: "a/b.slice:berth:abc", wantErr: "invalid slice name"},
		{name: "systemd empty name", path: "system.slice:berth:", wantErr: "unit name"},
		{name: "systemd slash in name", path: "system.slice:berth:a/b", wantErr: "unit name"},
		{name: "systemd slash in prefix", path: "system.slice:b/x:abc", wantErr: "prefix"},
		{name: "one colon is relative", path: "a:b", want: "/berth/a:b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolvePath(tt.path, tt.id, tt.parent)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolvePath(%q, %q, %q) = %q, %v; want error containing %q", tt.path, tt.id, tt.parent, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolvePath(%q, %q, %q): %v", tt.path, tt.id, tt.parent, err)
			}
			if got != tt.want {
				t.Fatalf("resolvePath(%q, %q, %q) = %q, want %q", tt.path, tt.id, tt.parent, got, tt.want)
			}
		})
	}
}

func TestIsWithin(t *testing.T) {
	tests := []struct {
		p, base string
		want    bool
	}{
		{"/a", "/a", true},
		{"/a/b", "/a", true},
		{"/ab", "/a", false},
		{"/a", "/a/b", false},
		{"/x", "/", true},
	}
	for _, tt := range tests {
		if got := isWithin(tt.p, tt.base); got != tt.want {
			t.Errorf("isWithin(%q, %q) = %v, want %v", tt.p, tt.base, got, tt.want)
		}
	}
}
