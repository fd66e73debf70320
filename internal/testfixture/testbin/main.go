// Command testbin is a static multi-call binary for berth's runtime tests.
// It replaces a container image: every tool a test needs inside a container
// is an applet of this one binary, so tests need no image and no network.
//
// The applet is chosen by the base name of argv[0] (as with busybox, through
// a symlink such as /bin/echo -> testbin) or, when invoked as "testbin", by
// argv[1]:
//
//	testbin echo hi
//	testbin --list          # print the applet names, one a line
//
// Applets that mimic coreutils/busybox tools support only the options
// documented on them. Options are single letters that may be combined
// (-rf); option parsing stops at "--" or at the first operand. An unknown
// applet exits 127; a usage error exits 1 unless documented otherwise.
//
// Build it with CGO_ENABLED=0 so that it runs in a root filesystem without a
// C library.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ctx is what an applet runs with: its name (for messages) and its standard
// streams, so that applets can be exercised in-process by tests.
type ctx struct {
	name   string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// errorf prints "NAME: message" on the applet's standard error.
func (c *ctx) errorf(format string, args ...any) {
	fmt.Fprintf(c.stderr, c.name+": "+format+"\n", args...)
}

// printf writes formatted output to the applet's standard output.
func (c *ctx) printf(format string, args ...any) {
	fmt.Fprintf(c.stdout, format, args...)
}

// applet is the entry point of one tool. args excludes the applet name; the
// result is the exit status.
type applet func(c *ctx, args []string) int

// applets is the dispatch table. Keep it in step with testfixture.Applets.
var applets = map[string]applet{
	"caps":       runCaps,
	"cat":        runCat,
	"cgroup":     runCgroup,
	"domainname": runDomainname,
	"echo":       runEcho,
	"env":        runEnv,
	"exitcode":   runExitcode,
	"false":      func(*ctx, []string) int { return 1 },
	"fds":        runFds,
	"forkbomb":   runForkbomb,
	"hostname":   runHostname,
	"id":         runID,
	"ls":         runLs,
	"memhog":     runMemhog,
	"mkdir":      runMkdir,
	"mounts":     runMounts,
	"ns":         runNs,
	"oomscore":   runOomscore,
	"pid":        runPid,
	"pwd":        runPwd,
	"readlink":   runReadlink,
	"rlimits":    runRlimits,
	"rm":         runRm,
	"sigcatch":   runSigcatch,
	"sleep":      runSleep,
	"spin":       runSpin,
	"stat":       runStat,
	"syscall":    runSyscall,
	"sysctl":     runSysctl,
	"touch":      runTouch,
	"true":       func(*ctx, []string) int { return 0 },
	"tty":        runTty,
	"uidmap":     runUidmap,
	"umask":      runUmask,
	"write":      runWrite,
}

// multiCallName is the name under which testbin takes the applet from argv[1].
const multiCallName = "testbin"

// Exit statuses used by the dispatcher.
const (
	exitUsage   = 2
	exitUnknown = 127
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches argv to an applet and returns the exit status.
func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name, args, err := dispatch(argv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", multiCallName, err)
		fmt.Fprintf(stderr, "usage: %s APPLET [ARG...]\napplets: %s\n",
			multiCallName, strings.Join(appletNames(), " "))
		return exitUsage
	}
	if name == "--list" {
		for _, n := range appletNames() {
			fmt.Fprintln(stdout, n)
		}
		return 0
	}
	fn, ok := applets[name]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown applet %q\n", multiCallName, name)
		return exitUnknown
	}
	return fn(&ctx{name: name, stdin: stdin, stdout: stdout, stderr: stderr}, args)
}

// dispatch returns the applet name selected by argv and the applet's
// arguments: the base name of argv[0], or argv[1] when that base name is
// "testbin".
func dispatch(argv []string) (name string, args []string, err error) {
	if len(argv) == 0 {
		return "", nil, errors.New("empty argument vector")
	}
	name = filepath.Base(argv[0])
	if name != multiCallName {
		return name, argv[1:], nil
	}
	if len(argv) < 2 {
		return "", nil, errors.New("missing applet name")
	}
	return argv[1], argv[2:], nil
}

// appletNames returns the names in the dispatch table, sorted.
func appletNames() []string {
	names := make([]string, 0, len(applets))
	for n := range applets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// flagSet records which single-letter options were given.
type flagSet map[byte]bool

// parseFlags parses leading options in the manner of POSIX getopt: each
// letter must be in allowed, letters may be combined ("-rf"), "--" ends the
// options, and the first operand (including a lone "-") stops parsing.
func parseFlags(args []string, allowed string) (flagSet, []string, error) {
	set := flagSet{}
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			return set, args[1:], nil
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for i := 1; i < len(a); i++ {
			if strings.IndexByte(allowed, a[i]) < 0 {
				return nil, nil, fmt.Errorf("invalid option -- '%c'", a[i])
			}
			set[a[i]] = true
		}
		args = args[1:]
	}
	return set, args, nil
}

// parseSeconds parses a non-negative duration given in seconds, fractions
// allowed, with an optional coreutils sleep suffix: s, m, h or d.
func parseSeconds(s string) (time.Duration, error) {
	unit := time.Second
	num := s
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 's':
			num = s[:n-1]
		case 'm':
			unit, num = time.Minute, s[:n-1]
		case 'h':
			unit, num = time.Hour, s[:n-1]
		case 'd':
			unit, num = 24*time.Hour, s[:n-1]
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid time interval %q", s)
	}
	d := f * float64(unit)
	if d >= math.MaxInt64 {
		return math.MaxInt64, nil
	}
	return time.Duration(d), nil
}

// optionalSeconds parses args[i] with parseSeconds, or returns def when the
// argument is absent.
func optionalSeconds(args []string, i int, def time.Duration) (time.Duration, error) {
	if len(args) <= i {
		return def, nil
	}
	return parseSeconds(args[i])
}

// cstring converts a NUL-terminated byte array (as in struct utsname).
func cstring(b []byte) string {
	if i := slices.Index(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// errnoString describes err as "ENAME (N): message" when it is an errno.
func errnoString(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	name := unix.ErrnoName(errno)
	if name == "" {
		name = "errno"
	}
	return fmt.Sprintf("%s (%d): %v", name, int(errno), errno)
}

// catPath copies the file at path to the applet's standard output.
func catPath(c *ctx, path string) int {
	f, err := os.Open(path)
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	defer f.Close()
	if _, err := io.Copy(c.stdout, f); err != nil {
		c.errorf("reading %s: %v", path, err)
		return 1
	}
	return 0
}

// runEcho prints its arguments separated by spaces and followed by a
// newline. Leading -n options (also written -nn) suppress the newline.
func runEcho(c *ctx, args []string) int {
	newline := true
	for len(args) > 0 && len(args[0]) > 1 && strings.Trim(args[0], "n") == "-" {
		newline = false
		args = args[1:]
	}
	out := strings.Join(args, " ")
	if newline {
		out += "\n"
	}
	io.WriteString(c.stdout, out)
	return 0
}

// runCat copies each FILE (standard input for none or "-") to standard
// output; unreadable files are reported and make the exit status 1.
func runCat(c *ctx, args []string) int {
	if len(args) == 0 {
		args = []string{"-"}
	}
	status := 0
	for _, name := range args {
		if name == "-" {
			if _, err := io.Copy(c.stdout, c.stdin); err != nil {
				c.errorf("reading standard input: %v", err)
				status = 1
			}
			continue
		}
		if catPath(c, name) != 0 {
			status = 1
		}
	}
	return status
}

// runSleep sleeps for the sum of its arguments, each in seconds (fractions
// and the suffixes s, m, h, d allowed).
func runSleep(c *ctx, args []string) int {
	if len(args) == 0 {
		c.errorf("missing operand")
		return 1
	}
	var total time.Duration
	for _, a := range args {
		d, err := parseSeconds(a)
		if err != nil {
			c.errorf("%v", err)
			return 1
		}
		total += d
	}
	time.Sleep(total)
	return 0
}

// runExitcode exits with the status given as its only argument (0-255).
func runExitcode(c *ctx, args []string) int {
	if len(args) != 1 {
		c.errorf("usage: exitcode N")
		return exitUsage
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 || n > 255 {
		c.errorf("invalid exit status %q", args[0])
		return exitUsage
	}
	return n
}

// idNames maps numeric ids to names read from an /etc/passwd or /etc/group
// style file (the id is the third field in both). A missing file yields an
// empty map, so that ids are printed as numbers only.
func idNames(path string) map[int]string {
	names := map[int]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return names
	}
	for line := range strings.Lines(string(data)) {
		fields := strings.Split(strings.TrimRight(line, "\n"), ":")
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		id, err := strconv.Atoi(fields[2])
		if err != nil {
			continue
		}
		if _, dup := names[id]; !dup {
			names[id] = fields[0]
		}
	}
	return names
}

// fullGroupList is the list coreutils id shows after "groups=": the
// effective gid first, then the supplementary groups without duplicates.
func fullGroupList(egid int, groups []int) []int {
	list := []int{egid}
	for _, g := range groups {
		if !slices.Contains(list, g) {
			list = append(list, g)
		}
	}
	return list
}

// groupIDList is the list coreutils id -G prints: the real gid, the
// effective gid if different, then the other supplementary groups.
func groupIDList(rgid, egid int, groups []int) []int {
	list := []int{rgid}
	if egid != rgid {
		list = append(list, egid)
	}
	for _, g := range groups {
		if !slices.Contains(list, g) {
			list = append(list, g)
		}
	}
	return list
}

// idWithName formats id as "N(name)", or "N" when it has no name.
func idWithName(id int, names map[int]string) string {
	if n, ok := names[id]; ok {
		return fmt.Sprintf("%d(%s)", id, n)
	}
	return strconv.Itoa(id)
}

// runID prints user and group ids like coreutils id, for the calling
// process only: with no option "uid=0(root) gid=0(root) groups=0(root),..."
// (names from /etc/passwd and /etc/group when present; euid= and egid= are
// added when they differ from the real ids); -u the effective uid, -g the
// effective gid, -G all group ids; -n prints names instead of numbers with
// -u, -g or -G.
func runID(c *ctx, args []string) int {
	fl, rest, err := parseFlags(args, "ugGn")
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	if len(rest) > 0 {
		c.errorf("extra operand %q: only the calling process is supported", rest[0])
		return 1
	}
	choices := 0
	for _, f := range []byte("ugG") {
		if fl[f] {
			choices++
		}
	}
	if choices > 1 {
		c.errorf("cannot print \"only\" of more than one choice")
		return 1
	}
	if fl['n'] && choices == 0 {
		c.errorf("cannot print only names or real IDs in default format")
		return 1
	}
	groups, err := os.Getgroups()
	if err != nil {
		c.errorf("getgroups: %v", err)
		return 1
	}
	ruid, euid, rgid, egid := os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid()
	users, grps := idNames("/etc/passwd"), idNames("/etc/group")

	// one formats an id for the -u, -g and -G forms.
	status := 0
	one := func(id int, names map[int]string, kind string) string {
		if !fl['n'] {
			return strconv.Itoa(id)
		}
		if n, ok := names[id]; ok {
			return n
		}
		c.errorf("cannot find name for %s ID %d", kind, id)
		status = 1
		return strconv.Itoa(id)
	}
	switch {
	case fl['u']:
		c.printf("%s\n", one(euid, users, "user"))
	case fl['g']:
		c.printf("%s\n", one(egid, grps, "group"))
	case fl['G']:
		var out []string
		for _, g := range groupIDList(rgid, egid, groups) {
			out = append(out, one(g, grps, "group"))
		}
		c.printf("%s\n", strings.Join(out, " "))
	default:
		var b strings.Builder
		fmt.Fprintf(&b, "uid=%s gid=%s", idWithName(ruid, users), idWithName(rgid, grps))
		if euid != ruid {
			fmt.Fprintf(&b, " euid=%s", idWithName(euid, users))
		}
		if egid != rgid {
			fmt.Fprintf(&b, " egid=%s", idWithName(egid, grps))
		}
		var list []string
		for _, g := range fullGroupList(egid, groups) {
			list = append(list, idWithName(g, grps))
		}
		fmt.Fprintf(&b, " groups=%s\n", strings.Join(list, ","))
		io.WriteString(c.stdout, b.String())
	}
	return status
}

// runPwd prints the physical working directory (getcwd(2)), like pwd -P.
func runPwd(c *ctx, _ []string) int {
	wd, err := unix.Getwd()
	if err != nil {
		c.errorf("getcwd: %v", err)
		return 1
	}
	c.printf("%s\n", wd)
	return 0
}

// modeString renders a raw st_mode the way ls -l does ("drwxr-xr-x").
func modeString(mode uint32) string {
	var b [10]byte
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		b[0] = 'd'
	case unix.S_IFLNK:
		b[0] = 'l'
	case unix.S_IFCHR:
		b[0] = 'c'
	case unix.S_IFBLK:
		b[0] = 'b'
	case unix.S_IFIFO:
		b[0] = 'p'
	case unix.S_IFSOCK:
		b[0] = 's'
	default:
		b[0] = '-'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if mode&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		} else {
			b[i+1] = '-'
		}
	}
	// special sets the execute slot at i for a set-id or sticky bit.
	special := func(bit uint32, i int, set, unset byte) {
		if mode&bit == 0 {
			return
		}
		if b[i] == 'x' {
			b[i] = set
		} else {
			b[i] = unset
		}
	}
	special(unix.S_ISUID, 3, 's', 'S')
	special(unix.S_ISGID, 6, 's', 'S')
	special(unix.S_ISVTX, 9, 't', 'T')
	return string(b[:])
}

// lsLong prints one ls -l line: mode, links, uid, gid, size, name and, for
// a symbolic link, its target.
func lsLong(c *ctx, path, name string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	line := fmt.Sprintf("%s %d %d %d %d %s", modeString(st.Mode), st.Nlink, st.Uid, st.Gid, st.Size, name)
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if target, err := os.Readlink(path); err == nil {
			line += " -> " + target
		}
	}
	c.printf("%s\n", line)
	return nil
}

// runLs lists files and directory contents, one name a line (as coreutils
// does when not writing to a terminal), sorted by name. -a includes names
// starting with "." (and "." and ".."); -l prints a minimal long format:
// "MODE NLINK UID GID SIZE NAME[ -> TARGET]" with numeric ids and no times
// or totals; -1 is accepted for compatibility. File operands are listed
// first, then each directory, with a "DIR:" header when there are several
// operands. Errors exit 2 as with coreutils.
func runLs(c *ctx, args []string) int {
	fl, ops, err := parseFlags(args, "la1")
	if err != nil {
		c.errorf("%v", err)
		return 2
	}
	if len(ops) == 0 {
		ops = []string{"."}
	}
	status := 0
	show := func(path, name string) {
		if !fl['l'] {
			c.printf("%s\n", name)
			return
		}
		if err := lsLong(c, path, name); err != nil {
			c.errorf("%v", err)
			status = 2
		}
	}
	var dirs []string
	for _, op := range ops {
		// Like coreutils, follow a symlink operand unless -l is given.
		stat := os.Stat
		if fl['l'] {
			stat = os.Lstat
		}
		fi, err := stat(op)
		if err != nil {
			c.errorf("cannot access '%s': %v", op, errors.Unwrap(err))
			status = 2
			continue
		}
		if fi.IsDir() {
			dirs = append(dirs, op)
			continue
		}
		show(op, op)
	}
	for i, dir := range dirs {
		if len(ops) > 1 {
			if i > 0 || len(dirs) < len(ops) {
				c.printf("\n")
			}
			c.printf("%s:\n", dir)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			c.errorf("cannot open directory '%s': %v", dir, errors.Unwrap(err))
			status = 2
			continue
		}
		names := make([]string, 0, len(entries)+2)
		if fl['a'] {
			names = append(names, ".", "..")
		}
		for _, e := range entries {
			if fl['a'] || !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		for _, n := range names {
			// Not filepath.Join: "dir/.." must stay uncleaned for lstat.
			show(dir+"/"+n, n)
		}
	}
	return status
}

// setEnv sets kv ("KEY=VALUE") in env, replacing an earlier KEY.
func setEnv(env []string, kv string) []string {
	key, _, _ := strings.Cut(kv, "=")
	env = slices.DeleteFunc(env, func(e string) bool {
		k, _, _ := strings.Cut(e, "=")
		return k == key
	})
	return append(env, kv)
}

// lookPath finds file as execvp(3) would, using PATH from env (or
// "/bin:/usr/bin" when unset).
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := "/bin:/usr/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", unix.ENOENT
}

// runEnv prints the environment, one VAR=VALUE a line. Leading KEY=VALUE
// arguments are added first; -i (or "-") starts from an empty environment.
// If a command follows, it is executed (execve, replacing env) with that
// environment instead; as with coreutils env the status is 127 when it
// cannot be found, 126 when it cannot be run and 125 for env's own errors.
func runEnv(c *ctx, args []string) int {
	env := os.Environ()
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			args = args[1:]
			break
		}
		if a == "-i" || a == "-" {
			env = nil
			args = args[1:]
			continue
		}
		if strings.HasPrefix(a, "-") {
			c.errorf("invalid option %q", a)
			return 125
		}
		break
	}
	for len(args) > 0 && strings.Contains(args[0], "=") {
		env = setEnv(env, args[0])
		args = args[1:]
	}
	if len(args) == 0 {
		for _, e := range env {
			c.printf("%s\n", e)
		}
		return 0
	}
	path, err := lookPath(args[0], env)
	if err == nil {
		err = syscall.Exec(path, args, env)
	}
	c.errorf("'%s': %v", args[0], err)
	if errors.Is(err, unix.ENOENT) {
		return 127
	}
	return 126
}

// uname returns the utsname of this process's UTS namespace.
func uname(c *ctx) (*unix.Utsname, bool) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		c.errorf("uname: %v", err)
		return nil, false
	}
	return &u, true
}

// runHostname prints the host name (uname nodename).
func runHostname(c *ctx, _ []string) int {
	u, ok := uname(c)
	if !ok {
		return 1
	}
	c.printf("%s\n", cstring(u.Nodename[:]))
	return 0
}

// runDomainname prints the NIS domain name (uname domainname; the kernel
// default is "(none)").
func runDomainname(c *ctx, _ []string) int {
	u, ok := uname(c)
	if !ok {
		return 1
	}
	c.printf("%s\n", cstring(u.Domainname[:]))
	return 0
}

// runMkdir creates each DIR (mode 0777 less umask); -p creates parents as
// needed and accepts existing directories.
func runMkdir(c *ctx, args []string) int {
	fl, ops, err := parseFlags(args, "p")
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	if len(ops) == 0 {
		c.errorf("missing operand")
		return 1
	}
	status := 0
	for _, dir := range ops {
		mkdir := os.Mkdir
		if fl['p'] {
			mkdir = os.MkdirAll
		}
		if err := mkdir(dir, 0o777); err != nil {
			c.errorf("cannot create directory '%s': %v", dir, errors.Unwrap(err))
			status = 1
		}
	}
	return status
}

// runTouch sets the access and modification times of each FILE to now,
// creating it (empty, mode 0666 less umask) if it does not exist.
func runTouch(c *ctx, args []string) int {
	if len(args) == 0 {
		c.errorf("missing file operand")
		return 1
	}
	now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
	status := 0
	for _, name := range args {
		err := unix.UtimesNanoAt(unix.AT_FDCWD, name, now, 0)
		if errors.Is(err, unix.ENOENT) {
			var f *os.File
			if f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o666); err == nil {
				err = f.Close()
			} else {
				err = errors.Unwrap(err)
			}
		}
		if err != nil {
			c.errorf("cannot touch '%s': %v", name, err)
			status = 1
		}
	}
	return status
}

// runRm removes each FILE. -r removes directories and their contents; -f
// ignores missing files and a missing operand. Like coreutils it refuses to
// remove "/", "." and "..".
func runRm(c *ctx, args []string) int {
	fl, ops, err := parseFlags(args, "rRf")
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	recursive := fl['r'] || fl['R']
	if len(ops) == 0 && !fl['f'] {
		c.errorf("missing operand")
		return 1
	}
	status := 0
	for _, op := range ops {
		if filepath.Clean(op) == "/" {
			c.errorf("it is dangerous to operate recursively on '/'")
			status = 1
			continue
		}
		if base := filepath.Base(op); base == "." || base == ".." {
			c.errorf("refusing to remove '.' or '..' directory: skipping '%s'", op)
			status = 1
			continue
		}
		fi, err := os.Lstat(op)
		switch {
		case err != nil:
			if !fl['f'] || !errors.Is(err, os.ErrNotExist) {
				c.errorf("cannot remove '%s': %v", op, errors.Unwrap(err))
				status = 1
			}
			continue
		case fi.IsDir() && !recursive:
			c.errorf("cannot remove '%s': Is a directory", op)
			status = 1
			continue
		case fi.IsDir():
			err = os.RemoveAll(op)
		default:
			err = os.Remove(op)
		}
		if err != nil {
			c.errorf("cannot remove '%s': %v", op, err)
			status = 1
		}
	}
	return status
}

// runWrite writes CONTENT (the remaining arguments joined by spaces, with no
// newline added) to FILE, creating it with mode 0644 (less umask) or
// truncating it.
func runWrite(c *ctx, args []string) int {
	if len(args) == 0 {
		c.errorf("usage: write FILE [CONTENT...]")
		return 1
	}
	if err := os.WriteFile(args[0], []byte(strings.Join(args[1:], " ")), 0o644); err != nil {
		c.errorf("%v", err)
		return 1
	}
	return 0
}

// runReadlink prints the target of each symbolic link. As with coreutils
// readlink without -v, a path that is not a link fails silently (status 1).
func runReadlink(c *ctx, args []string) int {
	if len(args) == 0 {
		c.errorf("missing operand")
		return 1
	}
	status := 0
	for _, p := range args {
		target, err := os.Readlink(p)
		if err != nil {
			status = 1
			continue
		}
		c.printf("%s\n", target)
	}
	return status
}

// fileType names the file type in a raw st_mode.
func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return "unknown"
}

// runStat prints, for each PATH, one line
// "mode=0755 uid=0 gid=0 type=directory" (mode includes the set-id and
// sticky bits; type is one of regular, directory, symlink, char, block,
// fifo, socket). Symbolic links are not followed unless -L is given.
func runStat(c *ctx, args []string) int {
	fl, ops, err := parseFlags(args, "L")
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	if len(ops) == 0 {
		c.errorf("missing operand")
		return 1
	}
	status := 0
	for _, p := range ops {
		var st unix.Stat_t
		stat := unix.Lstat
		if fl['L'] {
			stat = unix.Stat
		}
		if err := stat(p, &st); err != nil {
			c.errorf("cannot stat '%s': %v", p, err)
			status = 1
			continue
		}
		c.printf("mode=%04o uid=%d gid=%d type=%s\n", st.Mode&0o7777, st.Uid, st.Gid, fileType(st.Mode))
	}
	return status
}

// runMounts prints /proc/self/mountinfo.
func runMounts(c *ctx, _ []string) int { return catPath(c, "/proc/self/mountinfo") }

// runCgroup prints /proc/self/cgroup.
func runCgroup(c *ctx, _ []string) int { return catPath(c, "/proc/self/cgroup") }

// capsPrefixes are the /proc/self/status lines printed by caps.
var capsPrefixes = []string{"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:"}

// runCaps prints the CapInh, CapPrm, CapEff, CapBnd, CapAmb, NoNewPrivs and
// Seccomp lines of /proc/self/status as they appear there ("CapEff:\t...").
func runCaps(c *ctx, _ []string) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range capsPrefixes {
			if strings.HasPrefix(line, p) {
				c.printf("%s\n", line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		c.errorf("reading /proc/self/status: %v", err)
		return 1
	}
	return 0
}

// rlimitNames names the resources printed by rlimits, indexed by number.
var rlimitNames = []string{
	unix.RLIMIT_CPU:        "RLIMIT_CPU",
	unix.RLIMIT_FSIZE:      "RLIMIT_FSIZE",
	unix.RLIMIT_DATA:       "RLIMIT_DATA",
	unix.RLIMIT_STACK:      "RLIMIT_STACK",
	unix.RLIMIT_CORE:       "RLIMIT_CORE",
	unix.RLIMIT_RSS:        "RLIMIT_RSS",
	unix.RLIMIT_NPROC:      "RLIMIT_NPROC",
	unix.RLIMIT_NOFILE:     "RLIMIT_NOFILE",
	unix.RLIMIT_MEMLOCK:    "RLIMIT_MEMLOCK",
	unix.RLIMIT_AS:         "RLIMIT_AS",
	unix.RLIMIT_LOCKS:      "RLIMIT_LOCKS",
	unix.RLIMIT_SIGPENDING: "RLIMIT_SIGPENDING",
	unix.RLIMIT_MSGQUEUE:   "RLIMIT_MSGQUEUE",
	unix.RLIMIT_NICE:       "RLIMIT_NICE",
	unix.RLIMIT_RTPRIO:     "RLIMIT_RTPRIO",
	unix.RLIMIT_RTTIME:     "RLIMIT_RTTIME",
}

// rlimitValue formats a limit, "unlimited" for RLIM_INFINITY.
func rlimitValue(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// selfExe returns a path to this binary: /proc/self/exe's target when /proc
// is available, else argv[0] looked up in PATH.
func selfExe() (string, error) {
	if exe, err := os.Executable(); err == nil {
		return exe, nil
	}
	return lookPath(os.Args[0], os.Environ())
}

// startupNofile returns the RLIMIT_NOFILE limits this process was started
// with, given the current ones. The Go runtime raises the soft limit to
// hard-1 at start-up and restores the original in children between fork
// and exec, so when cur has that shape a child of this binary is started
// under ptrace: it stops at its execve before running any code of its own,
// and its limit is the original one. If that fails, cur is returned and
// ok is false.
func startupNofile(cur unix.Rlimit) (lim unix.Rlimit, ok bool) {
	if cur.Max == 0 || cur.Max == unix.RLIM_INFINITY || cur.Cur != cur.Max-1 {
		return cur, true
	}
	exe, err := selfExe()
	if err != nil {
		return cur, false
	}
	// The tracer is the thread that forked; keep ptrace calls on it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, err := syscall.ForkExec(exe, []string{"true"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{Ptrace: true},
	})
	if err != nil {
		return cur, false
	}
	defer reap(pid)
	var ws syscall.WaitStatus
	if _, err := wait4(pid, &ws); err != nil || !ws.Stopped() {
		return cur, false
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
		return cur, false
	}
	return lim, true
}

// wait4 calls wait4(2) for pid, retrying on EINTR.
func wait4(pid int, ws *syscall.WaitStatus) (int, error) {
	for {
		wpid, err := syscall.Wait4(pid, ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			return wpid, err
		}
	}
}

// reap kills the child pid and waits for it to exit.
func reap(pid int) {
	syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	for {
		if _, err := wait4(pid, &ws); err != nil || ws.Exited() || ws.Signaled() {
			return
		}
	}
}

// runRlimits prints "NAME SOFT HARD" for every resource, such as
// "RLIMIT_NOFILE 1024 4096", with "unlimited" for RLIM_INFINITY. The
// RLIMIT_NOFILE soft limit shown is the one the process started with, not
// the one the Go runtime raised it to (see startupNofile).
func runRlimits(c *ctx, _ []string) int {
	status := 0
	for res, name := range rlimitNames {
		var lim unix.Rlimit
		if err := unix.Prlimit(0, res, nil, &lim); err != nil {
			c.errorf("getrlimit %s: %v", name, err)
			status = 1
			continue
		}
		if res == unix.RLIMIT_NOFILE {
			var ok bool
			if lim, ok = startupNofile(lim); !ok {
				c.errorf("%s: soft limit may have been raised by the Go runtime", name)
			}
		}
		c.printf("%s %s %s\n", name, rlimitValue(lim.Cur), rlimitValue(lim.Max))
	}
	return status
}

// runUmask prints the umask as four octal digits ("0022").
func runUmask(c *ctx, _ []string) int {
	mask := unix.Umask(0)
	unix.Umask(mask)
	c.printf("%04o\n", mask)
	return 0
}

// nsNames are the /proc/self/ns entries printed by ns, in order.
var nsNames = []string{"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "user", "uts"}

// runNs prints "NAME TARGET" for each namespace link in /proc/self/ns, such
// as "net net:[4026531840]". An unreadable link (for example time on a
// kernel without time namespaces) is printed as "NAME -" and reported on
// standard error; the status is 1 only if no link could be read.
func runNs(c *ctx, _ []string) int {
	read := 0
	for _, n := range nsNames {
		target, err := os.Readlink("/proc/self/ns/" + n)
		if err != nil {
			c.errorf("%v", err)
			target = "-"
		} else {
			read++
		}
		c.printf("%s %s\n", n, target)
	}
	if read == 0 {
		return 1
	}
	return 0
}

// runUidmap prints /proc/self/uid_map then /proc/self/gid_map, one mapping
// a line with the file's name and single spaces, such as
// "uid_map 0 1000 1" (inside id, outside id, count).
func runUidmap(c *ctx, _ []string) int {
	for _, name := range []string{"uid_map", "gid_map"} {
		data, err := os.ReadFile("/proc/self/" + name)
		if err != nil {
			c.errorf("%v", err)
			return 1
		}
		for line := range strings.Lines(string(data)) {
			if f := strings.Fields(line); len(f) > 0 {
				c.printf("%s %s\n", name, strings.Join(f, " "))
			}
		}
	}
	return 0
}

// runOomscore prints /proc/self/oom_score_adj.
func runOomscore(c *ctx, _ []string) int {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	c.printf("%s\n", strings.TrimSpace(string(data)))
	return 0
}

// runPid prints "pid=N ppid=M" from getpid(2) and getppid(2).
func runPid(c *ctx, _ []string) int {
	c.printf("pid=%d ppid=%d\n", os.Getpid(), os.Getppid())
	return 0
}

// syscallProbe makes one system call and returns extra detail to print
// after "ok" on success.
type syscallProbe func(arg string) (string, error)

// syscallProbes are the calls the syscall applet can try. Probes whose
// real effect would be harmful pass invalid arguments and count the
// resulting argument error as success: it shows the call got past seccomp
// and the permission checks.
var syscallProbes = map[string]syscallProbe{
	// mkdir [DIR]: mkdir(2) DIR (default /.testbin-mkdir-PID), then rmdir.
	"mkdir": func(arg string) (string, error) {
		if arg == "" {
			arg = fmt.Sprintf("/.testbin-mkdir-%d", os.Getpid())
		}
		if err := unix.Mkdir(arg, 0o755); err != nil {
			return "", err
		}
		return "", unix.Rmdir(arg)
	},
	// chmod [PATH]: chmod(2) PATH (default /) to the mode it already has.
	"chmod": func(arg string) (string, error) {
		if arg == "" {
			arg = "/"
		}
		var st unix.Stat_t
		if err := unix.Stat(arg, &st); err != nil {
			return "", err
		}
		return "", unix.Chmod(arg, st.Mode&0o7777)
	},
	// getcwd: prints "ok DIR".
	"getcwd": func(string) (string, error) { return unix.Getwd() },
	// unshare: unshare(CLONE_NEWNS) on a thread that is never released.
	"unshare": func(string) (string, error) {
		runtime.LockOSThread()
		return "", unix.Unshare(unix.CLONE_NEWNS)
	},
	// mount [DIR]: mounts a small tmpfs on DIR (default /tmp) and detaches
	// it again at once.
	"mount": func(arg string) (string, error) {
		if arg == "" {
			arg = "/tmp"
		}
		if err := unix.Mount("testbin", arg, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=64k"); err != nil {
			return "", err
		}
		return "", unix.Unmount(arg, unix.MNT_DETACH)
	},
	// kexec_load: asks for more segments than the kernel allows, so a
	// permitted call fails with EINVAL (reported as "ok EINVAL") and an
	// unpermitted one with EPERM.
	"kexec_load": func(string) (string, error) {
		const tooManySegments = 17 // KEXEC_SEGMENT_MAX + 1
		_, _, errno := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, tooManySegments, 0, 0, 0, 0)
		if errno == unix.EINVAL {
			return "EINVAL", nil
		}
		return "", errnoOrNil(errno)
	},
	// ptrace: PTRACE_PEEKUSR on itself, which a permitted call rejects with
	// ESRCH (reported as "ok ESRCH") because nothing traces it.
	"ptrace": func(string) (string, error) {
		_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKUSR, uintptr(os.Getpid()), 0, 0, 0, 0)
		if errno == unix.ESRCH {
			return "ESRCH", nil
		}
		return "", errnoOrNil(errno)
	},
	// personality: queries the execution domain; prints "ok 0xPERSONA".
	"personality": func(string) (string, error) {
		const query = 0xffffffff
		r, _, errno := unix.Syscall(unix.SYS_PERSONALITY, query, 0, 0)
		return fmt.Sprintf("0x%x", r), errnoOrNil(errno)
	},
	// ioprio_get: I/O priority of this process; prints
	// "ok class=C data=D".
	"ioprio_get": func(string) (string, error) {
		const whoProcess = 1 // IOPRIO_WHO_PROCESS
		r, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, whoProcess, 0, 0)
		return fmt.Sprintf("class=%d data=%d", r>>13, r&0x1fff), errnoOrNil(errno)
	},
}

// errnoOrNil converts a raw syscall errno to an error, nil for 0.
func errnoOrNil(errno syscall.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}

// runSyscall tries the system call NAME (see syscallProbes; some take an
// optional ARG) and prints "ok", possibly followed by detail, exiting 0; or
// prints the error as "ENAME (N): message" and exits 1. Both go to
// standard output. An unknown NAME exits 2.
func runSyscall(c *ctx, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		c.errorf("usage: syscall NAME [ARG]")
		return exitUsage
	}
	probe, ok := syscallProbes[args[0]]
	if !ok {
		names := make([]string, 0, len(syscallProbes))
		for n := range syscallProbes {
			names = append(names, n)
		}
		sort.Strings(names)
		c.errorf("unknown system call %q (known: %s)", args[0], strings.Join(names, " "))
		return exitUsage
	}
	arg := ""
	if len(args) == 2 {
		arg = args[1]
	}
	detail, err := probe(arg)
	if err != nil {
		c.printf("%s\n", errnoString(err))
		return 1
	}
	if detail != "" {
		c.printf("ok %s\n", detail)
	} else {
		c.printf("ok\n")
	}
	return 0
}

// runFds prints "FD TARGET" for each open file descriptor, in numeric
// order, from /proc/self/fd. It uses raw system calls so that the listing
// shows neither its own directory descriptor nor descriptors the Go
// runtime would open for the os package (such as its epoll instance).
func runFds(c *ctx, _ []string) int {
	dirfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		c.errorf("open /proc/self/fd: %v", err)
		return 1
	}
	defer unix.Close(dirfd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.ReadDirent(dirfd, buf)
		if err != nil {
			c.errorf("reading /proc/self/fd: %v", err)
			return 1
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	var fds []int
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd != dirfd {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	target := make([]byte, 4096)
	for _, fd := range fds {
		n, err := unix.Readlinkat(dirfd, strconv.Itoa(fd), target)
		if err != nil {
			c.printf("%d ?\n", fd)
			continue
		}
		c.printf("%d %s\n", fd, target[:n])
	}
	return 0
}

// runTty reports whether standard input (fd 0) is a terminal: it prints
// "tty rows=R cols=C" with the window size and exits 0, or prints
// "not a tty" and exits 1 as coreutils tty does.
func runTty(c *ctx, _ []string) int {
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err != nil {
		c.printf("not a tty\n")
		return 1
	}
	ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
	if err != nil {
		c.errorf("TIOCGWINSZ: %v", err)
		return 1
	}
	c.printf("tty rows=%d cols=%d\n", ws.Row, ws.Col)
	return 0
}

// sysctlPath maps a dotted sysctl name ("net.ipv4.ip_forward") to its file.
func sysctlPath(name string) string {
	return "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
}

// runSysctl prints "NAME = VALUE" for each NAME read from /proc/sys, or
// just the value with -n.
func runSysctl(c *ctx, args []string) int {
	fl, ops, err := parseFlags(args, "n")
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	if len(ops) == 0 {
		c.errorf("usage: sysctl [-n] NAME...")
		return 1
	}
	status := 0
	for _, name := range ops {
		data, err := os.ReadFile(sysctlPath(name))
		if err != nil {
			c.errorf("cannot read %s: %v", name, err)
			status = 1
			continue
		}
		value := strings.TrimRight(string(data), "\n")
		if fl['n'] {
			c.printf("%s\n", value)
		} else {
			c.printf("%s = %s\n", name, value)
		}
	}
	return status
}

// runMemhog allocates MB mebibytes one MiB at a time, writing to every page
// so the memory is really charged, and prints "allocated N MiB" after each
// step. It then holds the memory for MAX_SECONDS (default 30) and exits 0.
func runMemhog(c *ctx, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		c.errorf("usage: memhog MB [MAX_SECONDS]")
		return 1
	}
	mb, err := strconv.Atoi(args[0])
	if err != nil || mb < 0 {
		c.errorf("invalid size %q", args[0])
		return 1
	}
	hold, err := optionalSeconds(args, 1, 30*time.Second)
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	page := os.Getpagesize()
	chunks := make([][]byte, 0, mb)
	for i := 1; i <= mb; i++ {
		chunk := make([]byte, 1<<20)
		for j := 0; j < len(chunk); j += page {
			chunk[j] = 1
		}
		chunks = append(chunks, chunk)
		c.printf("allocated %d MiB\n", i)
	}
	time.Sleep(hold)
	runtime.KeepAlive(chunks)
	return 0
}

// Exit status of forkbomb when not every child could be started.
const exitForkFailed = 3

// runForkbomb starts at most N children, each this binary re-executed as
// "sleep MAX_SECONDS" (default 20) with no open descriptors, stopping at
// the first failure. It prints "forked K of N", followed by ": ERROR" if
// K < N, then kills and reaps every child. It exits 0 when all N were
// started and 3 otherwise.
func runForkbomb(c *ctx, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		c.errorf("usage: forkbomb N [MAX_SECONDS]")
		return 1
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		c.errorf("invalid count %q", args[0])
		return 1
	}
	hold, err := optionalSeconds(args, 1, 20*time.Second)
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	exe, err := selfExe()
	if err != nil {
		c.errorf("finding own executable: %v", err)
		return 1
	}
	argv := []string{"sleep", strconv.FormatFloat(hold.Seconds(), 'f', -1, 64)}
	pids := make([]int, 0, n)
	var forkErr error
	for range n {
		pid, err := syscall.ForkExec(exe, argv, &syscall.ProcAttr{})
		if err != nil {
			forkErr = err
			break
		}
		pids = append(pids, pid)
	}
	if forkErr != nil {
		c.printf("forked %d of %d: %v\n", len(pids), n, forkErr)
	} else {
		c.printf("forked %d of %d\n", len(pids), n)
	}
	for _, pid := range pids {
		reap(pid)
	}
	if forkErr != nil {
		return exitForkFailed
	}
	return 0
}

// sigcatchSignals are the signals sigcatch reports.
var sigcatchSignals = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT,
}

// runSigcatch prints "ready" once its handlers are installed, then
// "signal NAME" (such as "signal SIGUSR1") for each of SIGHUP, SIGINT,
// SIGTERM, SIGUSR1, SIGUSR2 and SIGQUIT it receives. It exits 0 after
// SIGTERM or after MAX_SECONDS (default 60).
func runSigcatch(c *ctx, args []string) int {
	limit, err := optionalSeconds(args, 0, 60*time.Second)
	if err != nil || len(args) > 1 {
		c.errorf("usage: sigcatch [MAX_SECONDS]")
		return 1
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, sigcatchSignals...)
	defer signal.Stop(sigs)
	c.printf("ready\n")
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	for {
		select {
		case s := <-sigs:
			c.printf("signal %s\n", unix.SignalName(s.(syscall.Signal)))
			if s == syscall.SIGTERM {
				return 0
			}
		case <-timeout.C:
			c.errorf("no SIGTERM within %v", limit)
			return 0
		}
	}
}

// runSpin keeps THREADS (default 1) goroutines busy for SECONDS (default
// 10) of wall-clock time, then prints "iterations N", the total number of
// loop iterations done, as a rough measure of the CPU time obtained.
func runSpin(c *ctx, args []string) int {
	limit, err := optionalSeconds(args, 0, 10*time.Second)
	if err != nil || len(args) > 2 {
		c.errorf("usage: spin [SECONDS [THREADS]]")
		return 1
	}
	threads := 1
	if len(args) == 2 {
		if threads, err = strconv.Atoi(args[1]); err != nil || threads < 1 {
			c.errorf("invalid thread count %q", args[1])
			return 1
		}
	}
	deadline := time.Now().Add(limit)
	var total atomic.Uint64
	var wg sync.WaitGroup
	for range threads {
		wg.Go(func() {
			var n uint64
			for time.Now().Before(deadline) {
				for range 1 << 14 {
					n++
				}
			}
			total.Add(n)
		})
	}
	wg.Wait()
	c.printf("iterations %d\n", total.Load())
	return 0
}
