package specgen

import (
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// MountFlag describes how a mount option translates into mount(2) flags:
// the option sets Flag, or, if Clear is true, clears it.
type MountFlag struct {
	// Clear is true for options that remove Flag (for example "rw"
	// clears MS_RDONLY).
	Clear bool
	// Flag is the MS_* bit (or bits) the option sets or clears.
	Flag uintptr
}

// MountFlags maps the OCI mount options that translate into mount(2)
// flags to those flags. It holds every such option the OCI runtime
// specification lists for Linux mounts. It must not be modified.
var MountFlags = map[string]MountFlag{
	"async":         {Clear: true, Flag: unix.MS_SYNCHRONOUS},
	"atime":         {Clear: true, Flag: unix.MS_NOATIME},
	"bind":          {Flag: unix.MS_BIND},
	"defaults":      {Flag: 0},
	"dev":           {Clear: true, Flag: unix.MS_NODEV},
	"diratime":      {Clear: true, Flag: unix.MS_NODIRATIME},
	"dirsync":       {Flag: unix.MS_DIRSYNC},
	"exec":          {Clear: true, Flag: unix.MS_NOEXEC},
	"iversion":      {Flag: unix.MS_I_VERSION},
	"lazytime":      {Flag: unix.MS_LAZYTIME},
	"loud":          {Clear: true, Flag: unix.MS_SILENT},
	"mand":          {Flag: unix.MS_MANDLOCK},
	"noatime":       {Flag: unix.MS_NOATIME},
	"nodev":         {Flag: unix.MS_NODEV},
	"nodiratime":    {Flag: unix.MS_NODIRATIME},
	"noexec":        {Flag: unix.MS_NOEXEC},
	"noiversion":    {Clear: true, Flag: unix.MS_I_VERSION},
	"nolazytime":    {Clear: true, Flag: unix.MS_LAZYTIME},
	"nomand":        {Clear: true, Flag: unix.MS_MANDLOCK},
	"norelatime":    {Clear: true, Flag: unix.MS_RELATIME},
	"nostrictatime": {Clear: true, Flag: unix.MS_STRICTATIME},
	"nosuid":        {Flag: unix.MS_NOSUID},
	"nosymfollow":   {Flag: unix.MS_NOSYMFOLLOW},
	"rbind":         {Flag: unix.MS_BIND | unix.MS_REC},
	"relatime":      {Flag: unix.MS_RELATIME},
	"remount":       {Flag: unix.MS_REMOUNT},
	"ro":            {Flag: unix.MS_RDONLY},
	"rw":            {Clear: true, Flag: unix.MS_RDONLY},
	"silent":        {Flag: unix.MS_SILENT},
	"strictatime":   {Flag: unix.MS_STRICTATIME},
	"suid":          {Clear: true, Flag: unix.MS_NOSUID},
	"symfollow":     {Clear: true, Flag: unix.MS_NOSYMFOLLOW},
	"sync":          {Flag: unix.MS_SYNCHRONOUS},
}

// PropagationFlags maps the OCI mount propagation options to the flags
// of the mount(2) call that changes a mount's propagation type. It must
// not be modified.
var PropagationFlags = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// RecursiveFlag describes how a recursive ("r"-prefixed) mount option
// translates into the attributes of a mount_setattr(2) call with
// AT_RECURSIVE: the option sets Attr, or, if Clear is true, clears it.
//
// The access-time attributes (MOUNT_ATTR_RELATIME, MOUNT_ATTR_NOATIME,
// MOUNT_ATTR_STRICTATIME) are values of the MOUNT_ATTR__ATIME field rather
// than bits; ParseMountOptions handles them as described there.
type RecursiveFlag struct {
	// Clear is true for options that remove Attr (for example "rrw"
	// clears MOUNT_ATTR_RDONLY).
	Clear bool
	// Attr is the MOUNT_ATTR_* value the option sets or clears.
	Attr uint64
}

// RecursiveFlags maps the OCI recursive mount options to mount_setattr(2)
// attributes. It must not be modified.
var RecursiveFlags = map[string]RecursiveFlag{
	"rro":            {Attr: unix.MOUNT_ATTR_RDONLY},
	"rrw":            {Clear: true, Attr: unix.MOUNT_ATTR_RDONLY},
	"rnosuid":        {Attr: unix.MOUNT_ATTR_NOSUID},
	"rsuid":          {Clear: true, Attr: unix.MOUNT_ATTR_NOSUID},
	"rnodev":         {Attr: unix.MOUNT_ATTR_NODEV},
	"rdev":           {Clear: true, Attr: unix.MOUNT_ATTR_NODEV},
	"rnoexec":        {Attr: unix.MOUNT_ATTR_NOEXEC},
	"rexec":          {Clear: true, Attr: unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":    {Attr: unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":      {Clear: true, Attr: unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime":      {Attr: unix.MOUNT_ATTR_RELATIME},
	"rnorelatime":    {Clear: true, Attr: unix.MOUNT_ATTR_RELATIME},
	"rnoatime":       {Attr: unix.MOUNT_ATTR_NOATIME},
	"ratime":         {Clear: true, Attr: unix.MOUNT_ATTR_NOATIME},
	"rstrictatime":   {Attr: unix.MOUNT_ATTR_STRICTATIME},
	"rnostrictatime": {Clear: true, Attr: unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow":   {Attr: unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":     {Clear: true, Attr: unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// Names of the mount options that are neither mount(2) flags nor
// filesystem data; ParseMountOptions reports them in
// ParsedMount.Extensions.
const (
	// ExtIDMap ("idmap") asks for an ID-mapped mount.
	ExtIDMap = "idmap"
	// ExtRIDMap ("ridmap") asks for a recursively ID-mapped mount.
	ExtRIDMap = "ridmap"
	// ExtTmpCopyUp ("tmpcopyup") asks for the contents of the mount point
	// to be copied into a freshly mounted tmpfs.
	ExtTmpCopyUp = "tmpcopyup"
)

// ExtensionOptions lists the extension options: ExtIDMap, ExtRIDMap and
// ExtTmpCopyUp. It must not be modified.
var ExtensionOptions = []string{ExtIDMap, ExtRIDMap, ExtTmpCopyUp}

// KnownMountOptions returns, sorted, every mount option name the runtime
// recognises: the keys of MountFlags, PropagationFlags and RecursiveFlags,
// and ExtensionOptions. Filesystem-specific options are not included.
func KnownMountOptions() []string {
	names := make([]string, 0, len(MountFlags)+len(PropagationFlags)+len(RecursiveFlags)+len(ExtensionOptions))
	for name := range MountFlags {
		names = append(names, name)
	}
	for name := range PropagationFlags {
		names = append(names, name)
	}
	for name := range RecursiveFlags {
		names = append(names, name)
	}
	names = append(names, ExtensionOptions...)
	slices.Sort(names)
	return slices.Compact(names)
}

// ParsedMount is the translation of the options of an OCI mount.
type ParsedMount struct {
	// Flags are the MS_* flags to pass to mount(2).
	Flags uintptr
	// ClearFlags are the MS_* flags that options explicitly cleared (for
	// example MS_RDONLY for "rw"). A runtime needs them when it remounts
	// a bind mount, whose flags are otherwise inherited from the source.
	// Flags and ClearFlags never share a bit.
	ClearFlags uintptr
	// Propagation holds, in the order given, the flags of the mount(2)
	// calls that set the propagation type (for example
	// MS_PRIVATE|MS_REC for "rprivate").
	Propagation []uintptr
	// RecAttrSet and RecAttrClr are the attr_set and attr_clr fields of a
	// mount_setattr(2) call with AT_RECURSIVE. Both are zero when no
	// recursive option was given.
	RecAttrSet, RecAttrClr uint64
	// Data is the comma-separated list of the filesystem-specific options
	// (the options that are not recognised, such as "mode=755" or
	// "newinstance"), in the order given, to pass as mount(2)'s data.
	Data string
	// Extensions holds, in the order first given and without duplicates,
	// the extension options (see ExtensionOptions) that were given.
	Extensions []string
}

// HasExtension reports whether the extension option name was given.
func (p *ParsedMount) HasExtension(name string) bool {
	return slices.Contains(p.Extensions, name)
}

// ParseMountOptions translates the options of an OCI mount. Options are
// applied in order, so a later option overrides an earlier one ("ro,rw"
// is read-write). Empty options are ignored; options that are not in
// MountFlags, PropagationFlags, RecursiveFlags or ExtensionOptions are
// filesystem-specific and collected in Data.
//
// The access-time options select one value of the MOUNT_ATTR__ATIME field
// of mount_setattr(2), so any of them puts all of MOUNT_ATTR__ATIME in
// RecAttrClr, as the kernel requires. "rrelatime", "rnoatime" and
// "rstrictatime" select their mode. "ratime" and "rnostrictatime" turn
// noatime and strictatime respectively back into the kernel's default,
// relatime; "rnorelatime" turns relatime into strictatime, the only mode
// that updates access times as plain atime does.
func ParseMountOptions(opts []string) ParsedMount {
	var (
		p    ParsedMount
		data []string
	)
	for _, o := range opts {
		if o == "" {
			continue
		}
		if f, ok := MountFlags[o]; ok {
			if f.Clear {
				p.Flags &^= f.Flag
				p.ClearFlags |= f.Flag
			} else {
				p.Flags |= f.Flag
				p.ClearFlags &^= f.Flag
			}
			continue
		}
		if f, ok := PropagationFlags[o]; ok {
			p.Propagation = append(p.Propagation, f)
			continue
		}
		if f, ok := RecursiveFlags[o]; ok {
			p.applyRecursive(f)
			continue
		}
		if slices.Contains(ExtensionOptions, o) {
			if !slices.Contains(p.Extensions, o) {
				p.Extensions = append(p.Extensions, o)
			}
			continue
		}
		data = append(data, o)
	}
	p.Data = strings.Join(data, ",")
	return p
}

func (p *ParsedMount) applyRecursive(f RecursiveFlag) {
	if f.Attr&^unix.MOUNT_ATTR__ATIME != 0 {
		// An ordinary attribute bit.
		if f.Clear {
			p.RecAttrSet &^= f.Attr
			p.RecAttrClr |= f.Attr
		} else {
			p.RecAttrSet |= f.Attr
			p.RecAttrClr &^= f.Attr
		}
		return
	}
	// An access-time mode: a value of the MOUNT_ATTR__ATIME field.
	mode := p.RecAttrSet & unix.MOUNT_ATTR__ATIME
	switch {
	case !f.Clear:
		mode = f.Attr
	case mode != f.Attr:
		// The mode to be cleared is not selected: nothing to undo.
	case f.Attr == unix.MOUNT_ATTR_RELATIME:
		mode = unix.MOUNT_ATTR_STRICTATIME
	default:
		mode = unix.MOUNT_ATTR_RELATIME
	}
	p.RecAttrSet = p.RecAttrSet&^unix.MOUNT_ATTR__ATIME | mode
	p.RecAttrClr |= unix.MOUNT_ATTR__ATIME
}
