package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/runtime/container"
	"github.com/berth-engine/berth/runtime/seccomp"
	"github.com/berth-engine/berth/runtime/specgen"
)

func specVersion() string { return specs.Version }

func (g *globals) store() *container.Store { return &container.Store{Root: g.root} }

func needID(args []string, n int) error {
	if len(args) < n || (n > 0 && args[0] == "") {
		return fmt.Errorf("%w: container id cannot be empty", container.ErrInvalidInput)
	}
	return nil
}

func createFlags(extra ...*flagDef) func() *flagSet {
	return func() *flagSet {
		defs := []*flagDef{
			strF("path to the root of the bundle directory, defaults to the current directory", "", "bundle", "b"),
			strF("path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal", "", "console-socket"),
			strF("specify the file to write the process id to", "", "pid-file"),
			boolF("do not use pivot root to jail process inside rootfs", "no-pivot"),
			boolF("do not create a new session keyring for the container", "no-new-keyring"),
			intF("pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)", "0", "preserve-fds"),
		}
		return newFlagSet(append(defs, extra...)...)
	}
}

func checkSystemd(g *globals) error {
	if !g.systemdCgroup {
		return nil
	}
	if st, err := os.Stat("/run/systemd/system"); err == nil && st.IsDir() {
		return errors.New("the systemd cgroup driver is not supported; drop --systemd-cgroup to use cgroupfs")
	}
	return errors.New("systemd not running on this host, cannot use systemd cgroups manager")
}

func createOpts(g *globals, fs *flagSet, id string) (container.CreateOpts, error) {
	bundle := fs.String("bundle")
	if bundle == "" {
		wd, err := os.Getwd()
		if err != nil {
			return container.CreateOpts{}, err
		}
		bundle = wd
	}
	preserve := fs.Int("preserve-fds")
	if v := os.Getenv("LISTEN_FDS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			preserve += n
		}
	}
	return container.CreateOpts{
		ID:            id,
		Bundle:        bundle,
		ConsoleSocket: fs.String("console-socket"),
		PidFile:       fs.String("pid-file"),
		NoPivot:       fs.Bool("no-pivot"),
		NoNewKeyring:  fs.Bool("no-new-keyring"),
		PreserveFds:   preserve,
		Stdin:         os.Stdin,
		Stdout:        os.Stdout,
		Stderr:        os.Stderr,
	}, nil
}

func commands() []command {
	return []command{
		{
			name: "create", args: "<container-id>", summary: "create a container",
			help: `The create command creates an instance of a container for a bundle. The bundle
is a directory with a specification file named "config.json" and a root
filesystem. The container's process waits until "start" is run.`,
			flags: createFlags(),
			run: func(ctx context.Context, g *globals, fs *flagSet, args []string) error {
				if err := needID(args, 1); err != nil {
					return err
				}
				if err := checkSystemd(g); err != nil {
					return err
				}
				o, err := createOpts(g, fs, args[0])
				if err != nil {
					return err
				}
				return g.store().Create(ctx, o)
			},
		},
		{
			name: "start", args: "<container-id>", summary: "executes the user defined process in a created container",
			run: func(ctx context.Context, g *globals, fs *flagSet, args []string) error {
				if err := needID(args, 1); err != nil {
					return err
				}
				warns, err := g.store().Start(args[0])
				for _, w := range warns {
					g.log.warnf("%v", w)
				}
				return err
			},
		},
		{
			name: "run", args: "<container-id>", summary: "create and run a container",
			flags: createFlags(
				boolF("detach from the container's process", "detach", "d"),
				boolF("do not delete the container after it exits", "keep"),
			),
			run: runCommand,
		},
		{
			name: "state", args: "<container-id>", summary: "output the state of a container",
			run: func(ctx context.Context, g *globals, fs *flagSet, args []string) error {
				if err := needID(args, 1); err != nil {
					return err
				}
				st, err := g.store().State(args[0])
				if err != nil {
					return err
				}
				return printJSON(st, true)
			},
		},
		{
			name: "kill", args: "<container-id> [signal]", summary: "kill sends the specified signal (default: SIGTERM) to the container's init process",
			flags: func() *flagSet {
				return newFlagSet(boolF("send the specified signal to all processes inside the container", "all", "a"))
			},
			run: func(ctx context.Context, g *globals, fs *flagSet, args []string) error {
				if err := needID(args, 1); err != nil {
					return err
				}
				sigName := "SIGTERM"
				if len(args) > 1 {
					sigName = args[1]
				}
				sig, err := parseSignal(sigName)
				if err != nil {
					return err
				}
				return g.store().Kill(args[0], sig, fs.Bool("all"))
			},
		},
		{
			name: "delete", args: "<container-id> [container-id...]", summary: "delete any resources held by the container",
			flags: func() *flagSet {
				return newFlagSet(boolF("forcibly delete the container if it is still running (uses SIGKILL)", "force", "f"))
			},
			run: func(ctx context.Context, g *globals, fs *flagSet, args []string) error {
				if err := needID(args, 1); err != nil {
					return err
				}
				var failed error
				for _, id := range args {
					warns, err := g.store().Delete(id, fs.Bool("force"))
					for _, w := range warns {
						g.log.warnf("%v", w)
					}
					if err != nil {
						if len(args) == 1 {
							return err
						}
						g.log.errorf("%s: %s", id, describe("delete", err))
						failed = errors.New("some containers could not be deleted")
					}
				}
				if failed != nil {
					return &exitCode{1}
				}
				return nil
			},
		},
		{
			name: "exec", args: "<container-id> <command> [command options]  || -p process.json <container-id>", summary: "execute new process inside the container",
			flags: func() *flagSet {
				return newFlagSet(
					strF("path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal", "", "console-socket"),
					strF("current working directory in the container", "", "cwd"),
					listF("set environment variables", "env", "e"),
					boolF("allocate a pseudo-TTY", "tty", "t"),
					strF("UID (format: <uid>[:<gid>])", "", "user", "u"),
					listF("additional gids", "additional-gids", "g"),
					strF("path to the process.json", "", "process", "p"),
					boolF("detach from the container's process", "detach", "d"),
					strF("specify the file to write the process id to", "", "pid-file"),
					strF("set the asm process label for the process commonly used with selinux", "", "process-label"),
					strF("set the apparmor profile for the process", "", "apparmor"),
					boolF("set the no new privileges value for the process", "no-new-privs"),
					listF("add a capability to the bounding set for the process", "cap", "c"),
					intF("pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)", "0", "preserve-fds"),
					strF("run the process in an (existing) sub-cgroup(s)", "", "cgroup"),
					boolF("allow exec in a paused container", "ignore-paused"),
				)
			},
			run: execCommand,
		},
		{
			name: "pause", args: "<container-id>", summary: "pause suspends all processes inside the container",
			run: func(ctx context.Context, g *globals, fs *flagSet, args []string) error {
				if err := needID(args, 1); err != nil {
					return err
				}
				return g.store().Pause(args[0])
			},
		},
		{
			name: "resume", args: "<container-id>", summary: "resumes all processes that have been previously paused",
			run: func(ctx context.Context, g *globals, fs *flagSet, args []string) error {
				if err := needID(args, 1); err != nil {
					return err
				}
				return g.store().Resume(args[0])
			},
		},
		{
			name: "ps", args: "<container-id> [ps options]", summary: "ps displays the processes running inside a container",
			flags: func() *flagSet {
				return newFlagSet(strF("select one of: table or json", "table", "format", "f"))
			},
			run: psCommand,
		},
		{
			name: "events", args: "<container-id>", summary: "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
			flags: func() *flagSet {
				return newFlagSet(
					strF("set the stats collection interval", "5s", "interval"),
					boolF("display the container's stats then exit", "stats"),
				)
			},
			run: eventsCommand,
		},
		{
			name: "update", args: "<container-id>", summary: "update container resource constraints",
			flags: updateFlags,
			run:   updateCommand,
		},
		{
			name: "list", summary: "lists containers started by berth-runtime with the given root",
			flags: func() *flagSet {
				return newFlagSet(
					strF("select one of: table or json", "table", "format", "f"),
					boolF("display only container IDs", "quiet", "q"),
				)
			},
			run: listCommand,
		},
		{
			name: "spec", summary: "create a new specification file",
			flags: func() *flagSet {
				return newFlagSet(
					strF("path to the root of the bundle directory", "", "bundle", "b"),
					boolF("generate a configuration for a rootless container", "rootless"),
				)
			},
			run: specCommand,
		},
		{
			name: "features", summary: "show the enabled features",
			run: func(ctx context.Context, g *globals, fs *flagSet, args []string) error {
				info := specgen.SeccompInfo{
					Enabled:           seccomp.Enabled(),
					Actions:           seccomp.Actions(),
					Operators:         seccomp.Operators(),
					Archs:             seccomp.Archs(),
					KnownFlags:        seccomp.Flags(),
					SupportedFlags:    seccomp.SupportedFlags(),
					LibseccompVersion: seccomp.LibseccompVersion(),
				}
				return printJSON(specgen.Features(info), true)
			},
		},
	}
}

func printJSON(v any, indent bool) error {
	var data []byte
	var err error
	if indent {
		data, err = json.MarshalIndent(v, "", "  ")
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(data, '\n'))
	return err
}

func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("%w: unknown signal %q", container.ErrInvalidInput, s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	// Real-time signals: SIGRTMIN, SIGRTMIN+n, SIGRTMAX, SIGRTMAX-n.
	const rtmin, rtmax = 34, 64
	offset := func(rest, sign string) (int, bool) {
		if rest == "" {
			return 0, true
		}
		digits, ok := strings.CutPrefix(rest, sign)
		if !ok || digits == "" {
			return 0, false
		}
		n, err := strconv.Atoi(digits)
		return n, err == nil && n >= 0
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN"); ok {
		if n, ok := offset(rest, "+"); ok && rtmin+n <= rtmax {
			return unix.Signal(rtmin + n), nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMAX"); ok {
		if n, ok := offset(rest, "-"); ok && rtmax-n >= rtmin {
			return unix.Signal(rtmax - n), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown signal %q", container.ErrInvalidInput, s)
}

func runCommand(ctx context.Context, g *globals, fs *flagSet, args []string) error {
	if err := needID(args, 1); err != nil {
		return err
	}
	if err := checkSystemd(g); err != nil {
		return err
	}
	id := args[0]
	o, err := createOpts(g, fs, id)
	if err != nil {
		return err
	}
	detach := fs.Bool("detach")
	spec, err := container.LoadSpec(absBundle(o.Bundle))
	if err != nil {
		return err
	}
	o.Spec = spec
	var tty *ttyProxy
	if spec.Process != nil && spec.Process.Terminal && !detach {
		tty, err = newTTYProxy()
		if err != nil {
			return err
		}
		defer tty.close()
		o.ConsoleConn = tty.remote
	}
	st := g.store()
	// Forward signals from before start, so none is lost between start and
	// wait. Subscribing takes a round trip per signal with the Go runtime's
	// signal thread, so it overlaps with create.
	sigs := make(chan os.Signal, 64)
	subscribed := make(chan struct{})
	if detach {
		close(subscribed)
	} else {
		go func() {
			signal.Notify(sigs, forwardedSignals...)
			close(subscribed)
		}()
		defer func() {
			<-subscribed
			signal.Stop(sigs)
		}()
	}
	if err := st.Create(ctx, o); err != nil {
		return err
	}
	<-subscribed
	cleanup := func() {
		if !fs.Bool("keep") {
			if _, err := st.Delete(id, true); err != nil {
				g.log.warnf("delete %s: %v", id, err)
			}
		}
	}
	if tty != nil {
		if err := tty.receive(); err != nil {
			cleanup()
			return err
		}
	}
	warns, err := st.Start(id)
	for _, w := range warns {
		g.log.warnf("%v", w)
	}
	if err != nil {
		cleanup()
		return err
	}
	if detach {
		return nil
	}
	pid, err := st.InitPid(id)
	if err != nil {
		return err
	}
	code := waitForwarding(pid, sigs, tty)
	cleanup()
	return &exitCode{code}
}

func absBundle(b string) string {
	a, err := filepath.Abs(b)
	if err != nil {
		return b
	}
	return a
}

// forwardedSignals are relayed to a foreground container's process.
// Subscribing to every signal costs milliseconds at start-up, so the list
// names those a user or supervisor sends to a foreground runtime, plus
// SIGWINCH for terminal resizes.
var forwardedSignals = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGCONT, unix.SIGWINCH, unix.SIGPWR, unix.SIGVTALRM, unix.SIGPROF,
}

// waitForwarding waits for pid (our child) while forwarding signals to it.
func waitForwarding(pid int, sigs chan os.Signal, tty *ttyProxy) int {
	done := make(chan int, 1)
	go func() {
		code, err := container.WaitPid(pid)
		if err != nil {
			code = 255
		}
		done <- code
	}()
	for {
		select {
		case code := <-done:
			if tty != nil {
				tty.drain()
			}
			return code
		case s := <-sigs:
			sig := s.(unix.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				continue
			case unix.SIGWINCH:
				if tty != nil {
					tty.resize()
				}
				continue
			}
			_ = unix.Kill(pid, sig)
		}
	}
}

func execCommand(ctx context.Context, g *globals, fs *flagSet, args []string) error {
	if err := needID(args, 1); err != nil {
		return err
	}
	id := args[0]
	st := g.store()
	proc, err := execProcess(st, fs, id, args[1:])
	if err != nil {
		return err
	}
	detach := fs.Bool("detach")
	preserve := fs.Int("preserve-fds")
	o := container.ExecOpts{
		Process:       proc,
		ConsoleSocket: fs.String("console-socket"),
		PidFile:       fs.String("pid-file"),
		PreserveFds:   preserve,
		Stdin:         os.Stdin,
		Stdout:        os.Stdout,
		Stderr:        os.Stderr,
	}
	o.IgnorePaused = fs.Bool("ignore-paused")
	if v := fs.String("cgroup"); v != "" {
		if o.SubCgroups, err = container.ParseSubCgroups(v); err != nil {
			return err
		}
	}
	if proc.Terminal && detach && o.ConsoleSocket == "" {
		return fmt.Errorf("%w: cannot allocate tty if runc will detach without setting console socket", container.ErrInvalidInput)
	}
	if !proc.Terminal && o.ConsoleSocket != "" {
		return fmt.Errorf("%w: cannot use console socket if runc will not detach or allocate tty", container.ErrInvalidInput)
	}
	var tty *ttyProxy
	if proc.Terminal && o.ConsoleSocket == "" {
		tty, err = newTTYProxy()
		if err != nil {
			return err
		}
		defer tty.close()
		o.ConsoleConn = tty.remote
	}
	sigs := make(chan os.Signal, 64)
	if !detach {
		signal.Notify(sigs, forwardedSignals...)
		defer signal.Stop(sigs)
	}
	var pid int
	errc := make(chan error, 1)
	go func() {
		var err error
		pid, err = st.Exec(ctx, id, o)
		errc <- err
	}()
	if tty != nil {
		// The pty master arrives while the exec is being set up.
		if err := tty.receiveOr(errc); err != nil {
			return err
		}
	}
	if err := <-errc; err != nil {
		return err
	}
	if detach {
		return nil
	}
	return &exitCode{waitForwarding(pid, sigs, tty)}
}

// execProcess builds the exec'd process from -p or from the flags and
// the container's own process settings.
func execProcess(st *container.Store, fs *flagSet, id string, cmdArgs []string) (*specs.Process, error) {
	state, err := st.State(id)
	if err != nil {
		return nil, err
	}
	spec, err := container.LoadSpec(state.Bundle)
	if err != nil {
		return nil, err
	}
	var p specs.Process
	if path := fs.String("process"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read process.json: %w", err)
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("%w: process.json: %v", container.ErrInvalidInput, err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("%w: process.json: args must not be empty", container.ErrInvalidInput)
		}
		return &p, nil
	}
	if len(cmdArgs) == 0 {
		return nil, fmt.Errorf("%w: exec needs a command to run", container.ErrInvalidInput)
	}
	if spec.Process != nil {
		p = *spec.Process
	}
	p.Args = cmdArgs
	p.Terminal = fs.Bool("tty")
	p.ConsoleSize = nil
	if fs.IsSet("cwd") {
		p.Cwd = fs.String("cwd")
	}
	p.Env = append(append([]string{}, p.Env...), fs.List("env")...)
	if u := fs.String("user"); u != "" {
		uidS, gidS, hasGid := strings.Cut(u, ":")
		uid, err := strconv.ParseUint(uidS, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: parsing %s as int for uid failed", container.ErrInvalidInput, uidS)
		}
		p.User.UID = uint32(uid)
		if hasGid {
			gid, err := strconv.ParseUint(gidS, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: parsing %s as int for gid failed", container.ErrInvalidInput, gidS)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range fs.List("additional-gids") {
		gid, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: parsing %s as int for gid failed", container.ErrInvalidInput, g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	if fs.IsSet("apparmor") {
		p.ApparmorProfile = fs.String("apparmor")
	}
	if fs.IsSet("process-label") {
		p.SelinuxLabel = fs.String("process-label")
	}
	if fs.Bool("no-new-privs") {
		p.NoNewPrivileges = true
	}
	if caps := fs.List("cap"); len(caps) > 0 {
		var c specs.LinuxCapabilities
		if p.Capabilities != nil {
			c = *p.Capabilities
		}
		c.Bounding = append(append([]string{}, c.Bounding...), caps...)
		c.Effective = append(append([]string{}, c.Effective...), caps...)
		c.Permitted = append(append([]string{}, c.Permitted...), caps...)
		c.Ambient = append(append([]string{}, c.Ambient...), caps...)
		p.Capabilities = &c
	}
	return &p, nil
}

func psCommand(ctx context.Context, g *globals, fs *flagSet, args []string) error {
	if err := needID(args, 1); err != nil {
		return err
	}
	pids, err := g.store().Pids(args[0])
	if err != nil {
		return err
	}
	switch fs.String("format") {
	case "json":
		if pids == nil {
			pids = []int{}
		}
		return printJSON(pids, false)
	case "table":
	default:
		return fmt.Errorf("%w: invalid format option", container.ErrInvalidInput)
	}
	psArgs := args[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return nil
	}
	pidCol := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return errors.New("couldn't find PID field in ps output")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= pidCol {
			continue
		}
		if p, err := strconv.Atoi(f[pidCol]); err == nil && want[p] {
			fmt.Println(l)
		}
	}
	return nil
}

func eventsCommand(ctx context.Context, g *globals, fs *flagSet, args []string) error {
	if err := needID(args, 1); err != nil {
		return err
	}
	id := args[0]
	interval, err := time.ParseDuration(fs.String("interval"))
	if err != nil || interval <= 0 {
		return fmt.Errorf("%w: duration interval must be greater than 0", container.ErrInvalidInput)
	}
	type event struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data any    `json:"data,omitempty"`
	}
	st := g.store()
	emit := func() error {
		s, err := st.Stats(id)
		if err != nil {
			return err
		}
		return printJSON(event{Type: "stats", ID: id, Data: s}, false)
	}
	if fs.Bool("stats") {
		return emit()
	}
	// Stats every interval; OOM kills are checked more often and reported
	// as {"type":"oom"} events, as runc does.
	ooms, _ := st.OOMKills(id)
	oomTick := time.NewTicker(min(interval, 250*time.Millisecond))
	defer oomTick.Stop()
	next := time.Now()
	for {
		if !time.Now().Before(next) {
			if err := emit(); err != nil {
				if errors.Is(err, container.ErrNotRunning) {
					return nil
				}
				return err
			}
			next = time.Now().Add(interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-oomTick.C:
		}
		if n, err := st.OOMKills(id); err == nil && n > ooms {
			ooms = n
			if err := printJSON(event{Type: "oom", ID: id}, false); err != nil {
				return err
			}
		}
	}
}

func listCommand(ctx context.Context, g *globals, fs *flagSet, args []string) error {
	states, err := g.store().List()
	if err != nil {
		return err
	}
	if fs.Bool("quiet") {
		for _, s := range states {
			fmt.Println(s.ID)
		}
		return nil
	}
	switch fs.String("format") {
	case "json":
		if states == nil {
			states = []*container.State{}
		}
		return printJSON(states, false)
	case "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), ownerName())
		}
		return w.Flush()
	default:
		return fmt.Errorf("%w: invalid format option", container.ErrInvalidInput)
	}
}

func ownerName() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Geteuid())
}

func specCommand(ctx context.Context, g *globals, fs *flagSet, args []string) error {
	bundle := fs.String("bundle")
	if bundle == "" {
		bundle = "."
	}
	path := filepath.Join(bundle, "config.json")
	if _, err := os.Stat(path); err == nil {
		//lint:ignore ST1005 runc's exact message, which tools match
		return errors.New("File config.json exists. Remove it first")
	}
	s := specgen.Default()
	if fs.Bool("rootless") {
		specgen.ToRootless(s)
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o666)
}
