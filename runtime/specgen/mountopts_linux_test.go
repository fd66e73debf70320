package specgen

import (
	"reflect"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// specMountOptions are the Linux mount options the OCI runtime
// specification (v1.3.0) lists, plus "rnodev", which its table omits
// although it lists the opposite, "rdev".
var specMountOptions = []string{
	"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync",
	"exec", "idmap", "iversion", "lazytime", "loud", "mand", "noatime",
	"nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
	"norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
	"ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec",
	"ridmap", "rnoatime", "rnodiratime", "rnoexec", "rnorelatime",
	"rnodev", "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate",
	"rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid",
	"rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
	"strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
}

func TestKnownMountOptions(t *testing.T) {
	got := KnownMountOptions()
	if !slices.IsSorted(got) {
		t.Errorf("not sorted: %v", got)
	}
	want := slices.Sorted(slices.Values(specMountOptions))
	if !slices.Equal(got, want) {
		t.Errorf("KnownMountOptions() =\n%v\nwant\n%v", got, want)
	}
	// The tables must not overlap, or ParseMountOptions would ignore an
	// entry.
	seen := map[string]int{}
	for k := range MountFlags {
		seen[k]++
	}
	for k := range PropagationFlags {
		seen[k]++
	}
	for k := range RecursiveFlags {
		seen[k]++
	}
	for _, k := range ExtensionOptions {
		seen[k]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%q is in %d tables", k, n)
		}
	}
}

func TestMountFlagsPairs(t *testing.T) {
	// Each flag set by one option is cleared by its opposite.
	pairs := [][2]string{
		{"ro", "rw"}, {"nosuid", "suid"}, {"nodev", "dev"}, {"noexec", "exec"},
		{"sync", "async"}, {"mand", "nomand"}, {"noatime", "atime"},
		{"nodiratime", "diratime"}, {"relatime", "norelatime"},
		{"strictatime", "nostrictatime"}, {"iversion", "noiversion"},
		{"lazytime", "nolazytime"}, {"silent", "loud"},
		{"nosymfollow", "symfollow"},
	}
	for _, p := range pairs {
		set, clr := MountFlags[p[0]], MountFlags[p[1]]
		if set.Clear || !clr.Clear || set.Flag == 0 || set.Flag != clr.Flag {
			t.Errorf("%s=%+v, %s=%+v", p[0], set, p[1], clr)
		}
	}
	rpairs := [][2]string{
		{"rro", "rrw"}, {"rnosuid", "rsuid"}, {"rnodev", "rdev"},
		{"rnoexec", "rexec"}, {"rnodiratime", "rdiratime"},
		{"rrelatime", "rnorelatime"}, {"rnoatime", "ratime"},
		{"rstrictatime", "rnostrictatime"}, {"rnosymfollow", "rsymfollow"},
	}
	for _, p := range rpairs {
		set, clr := RecursiveFlags[p[0]], RecursiveFlags[p[1]]
		if set.Clear || !clr.Clear || set.Attr != clr.Attr {
			t.Errorf("%s=%+v, %s=%+v", p[0], set, p[1], clr)
		}
	}
}

func TestParseMountOptions(t *testing.T) {
	const atime = unix.MOUNT_ATTR__ATIME
	tests := []struct {
		name string
		opts []string
		want ParsedMount
	}{
		{
			name: "empty",
			opts: nil,
			want: ParsedMount{},
		},
		{
			name: "dev tmpfs",
			opts: []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
			want: ParsedMount{Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
		},
		{
			name: "devpts",
			opts: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			want: ParsedMount{Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		},
		{
			name: "cgroup",
			opts: []string{"nosuid", "noexec", "nodev", "relatime", "ro"},
			want: ParsedMount{Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RELATIME | unix.MS_RDONLY},
		},
		{
			name: "rbind ro",
			opts: []string{"rbind", "nosuid", "noexec", "nodev", "ro"},
			want: ParsedMount{Flags: unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RDONLY},
		},
		{
			name: "later option wins",
			opts: []string{"ro", "rw", "suid", "nosuid"},
			want: ParsedMount{Flags: unix.MS_NOSUID, ClearFlags: unix.MS_RDONLY},
		},
		{
			name: "clear then set",
			opts: []string{"rw", "ro"},
			want: ParsedMount{Flags: unix.MS_RDONLY},
		},
		{
			name: "all clearing options",
			opts: []string{"async", "atime", "dev", "diratime", "exec", "noiversion", "nolazytime", "loud", "nomand", "norelatime", "nostrictatime", "rw", "suid", "symfollow"},
			want: ParsedMount{ClearFlags: unix.MS_SYNCHRONOUS | unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NODIRATIME |
				unix.MS_NOEXEC | unix.MS_I_VERSION | unix.MS_LAZYTIME | unix.MS_SILENT | unix.MS_MANDLOCK |
				unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NOSYMFOLLOW},
		},
		{
			name: "all setting options",
			opts: []string{"defaults", "sync", "dirsync", "iversion", "lazytime", "silent", "mand", "noatime", "nodiratime", "nosymfollow", "remount", "bind"},
			want: ParsedMount{Flags: unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC | unix.MS_I_VERSION | unix.MS_LAZYTIME |
				unix.MS_SILENT | unix.MS_MANDLOCK | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_NOSYMFOLLOW |
				unix.MS_REMOUNT | unix.MS_BIND},
		},
		{
			name: "propagation in order",
			opts: []string{"bind", "rslave", "private", "rshared", "shared", "slave", "rprivate", "unbindable", "runbindable"},
			want: ParsedMount{
				Flags: unix.MS_BIND,
				Propagation: []uintptr{
					unix.MS_SLAVE | unix.MS_REC, unix.MS_PRIVATE, unix.MS_SHARED | unix.MS_REC, unix.MS_SHARED,
					unix.MS_SLAVE, unix.MS_PRIVATE | unix.MS_REC, unix.MS_UNBINDABLE, unix.MS_UNBINDABLE | unix.MS_REC,
				},
			},
		},
		{
			name: "recursive set",
			opts: []string{"rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"},
			want: ParsedMount{
				Flags: unix.MS_BIND | unix.MS_REC,
				RecAttrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
					unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW,
			},
		},
		{
			name: "recursive clear",
			opts: []string{"rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"},
			want: ParsedMount{
				RecAttrClr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
					unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW,
			},
		},
		{
			name: "recursive later option wins",
			opts: []string{"rro", "rrw", "rsuid", "rnosuid"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_NOSUID, RecAttrClr: unix.MOUNT_ATTR_RDONLY},
		},
		{
			name: "rnoatime",
			opts: []string{"rnoatime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_NOATIME, RecAttrClr: atime},
		},
		{
			name: "rstrictatime",
			opts: []string{"rstrictatime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: atime},
		},
		{
			name: "rrelatime",
			opts: []string{"rrelatime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_RELATIME, RecAttrClr: atime},
		},
		{
			name: "last atime mode wins",
			opts: []string{"rnoatime", "rstrictatime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: atime},
		},
		{
			name: "rrelatime resets the mode",
			opts: []string{"rro", "rstrictatime", "rrelatime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_RELATIME, RecAttrClr: atime},
		},
		{
			name: "ratime",
			opts: []string{"ratime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_RELATIME, RecAttrClr: atime},
		},
		{
			name: "ratime undoes rnoatime",
			opts: []string{"rnoatime", "ratime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_RELATIME, RecAttrClr: atime},
		},
		{
			name: "ratime keeps rstrictatime",
			opts: []string{"rstrictatime", "ratime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: atime},
		},
		{
			name: "rnostrictatime",
			opts: []string{"rstrictatime", "rnostrictatime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_RELATIME, RecAttrClr: atime},
		},
		{
			name: "rnostrictatime keeps rnoatime",
			opts: []string{"rnoatime", "rnostrictatime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_NOATIME, RecAttrClr: atime},
		},
		{
			name: "rnorelatime",
			opts: []string{"rnorelatime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: atime},
		},
		{
			name: "rnorelatime keeps rnoatime",
			opts: []string{"rnoatime", "rnorelatime"},
			want: ParsedMount{RecAttrSet: unix.MOUNT_ATTR_NOATIME, RecAttrClr: atime},
		},
		{
			name: "atime modes keep other attributes",
			opts: []string{"rnodev", "rrw", "rnoatime", "rnodiratime"},
			want: ParsedMount{
				RecAttrSet: unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOATIME | unix.MOUNT_ATTR_NODIRATIME,
				RecAttrClr: unix.MOUNT_ATTR_RDONLY | atime,
			},
		},
		{
			name: "extensions",
			opts: []string{"rbind", "idmap", "tmpcopyup", "ridmap", "idmap"},
			want: ParsedMount{Flags: unix.MS_BIND | unix.MS_REC, Extensions: []string{"idmap", "tmpcopyup", "ridmap"}},
		},
		{
			name: "filesystem data kept in order",
			opts: []string{"lowerdir=/a:/b", "", "ro", "upperdir=/u", "workdir=/w", "userxattr", "acl"},
			want: ParsedMount{Flags: unix.MS_RDONLY, Data: "lowerdir=/a:/b,upperdir=/u,workdir=/w,userxattr,acl"},
		},
		{
			name: "options are case sensitive",
			opts: []string{"RO"},
			want: ParsedMount{Data: "RO"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseMountOptions(tt.opts)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMountOptions(%q) =\n%+v\nwant\n%+v", tt.opts, got, tt.want)
			}
			if got.Flags&got.ClearFlags != 0 {
				t.Errorf("Flags and ClearFlags overlap: %#x", got.Flags&got.ClearFlags)
			}
			if got.RecAttrSet&got.RecAttrClr&^unix.MOUNT_ATTR__ATIME != 0 {
				t.Errorf("RecAttrSet and RecAttrClr overlap: %#x", got.RecAttrSet&got.RecAttrClr)
			}
			// The kernel rejects a partial MOUNT_ATTR__ATIME in attr_clr,
			// and an access-time mode in attr_set without it.
			if c := got.RecAttrClr & unix.MOUNT_ATTR__ATIME; c != 0 && c != unix.MOUNT_ATTR__ATIME {
				t.Errorf("partial MOUNT_ATTR__ATIME in RecAttrClr: %#x", got.RecAttrClr)
			}
			if got.RecAttrSet&unix.MOUNT_ATTR__ATIME != 0 && got.RecAttrClr&unix.MOUNT_ATTR__ATIME == 0 {
				t.Errorf("access-time mode set without MOUNT_ATTR__ATIME cleared: %#x/%#x", got.RecAttrSet, got.RecAttrClr)
			}
		})
	}
}

func TestParseMountOptionsEveryKnownOption(t *testing.T) {
	// No known option leaks into the filesystem data.
	for _, o := range KnownMountOptions() {
		if p := ParseMountOptions([]string{o}); p.Data != "" {
			t.Errorf("%q: data %q", o, p.Data)
		}
	}
}

func TestHasExtension(t *testing.T) {
	p := ParseMountOptions([]string{"bind", "idmap"})
	if !p.HasExtension(ExtIDMap) || p.HasExtension(ExtRIDMap) || p.HasExtension(ExtTmpCopyUp) {
		t.Errorf("HasExtension wrong for %v", p.Extensions)
	}
}

func TestDefaultMountOptions(t *testing.T) {
	// The options of the default mounts are mount flags or filesystem data.
	s := Default()
	ToRootless(s)
	for _, m := range append(Default().Mounts, s.Mounts...) {
		p := ParseMountOptions(m.Options)
		if len(p.Extensions) != 0 || len(p.Propagation) != 0 || p.RecAttrSet != 0 || p.RecAttrClr != 0 {
			t.Errorf("%s: unexpected %+v", m.Destination, p)
		}
	}
}
