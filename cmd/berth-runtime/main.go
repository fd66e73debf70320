// Command berth-runtime is berth's OCI runtime. Its command line follows
// runc's, so containerd, Podman, Docker and CRI-O can use it in runc's place.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/berth-engine/berth/runtime/container"
	_ "github.com/berth-engine/berth/runtime/nsexec" // namespace setup before the Go runtime
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == container.InitArg {
		// The container init must run on the main thread, where nsexec
		// set up its namespaces.
		runtime.GOMAXPROCS(1)
		runtime.LockOSThread()
	}
}

// version is set at build time.
var version = "dev"

const defaultRoot = "/run/berth-runtime"

type globals struct {
	root          string
	log           *logger
	systemdCgroup bool
}

type command struct {
	name    string
	args    string
	summary string
	help    string
	flags   func() *flagSet
	run     func(ctx context.Context, g *globals, fs *flagSet, args []string) error
}

func globalFlags() *flagSet {
	return newFlagSet(
		strF("root directory for storage of container state (this should be located in tmpfs)", defaultRoot, "root"),
		strF("set the log file to write runtime logs to (default is '/dev/stderr')", "", "log"),
		strF("set the log format ('text' (default), or 'json')", "text", "log-format"),
		boolF("enable debug logging", "debug"),
		boolF("enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\"", "systemd-cgroup"),
		strF("path to the criu binary used for checkpoint and restore (not supported)", "criu", "criu"),
		strF("ignore cgroup permission errors ('true', 'false', or 'auto')", "auto", "rootless"),
		boolF("show help", "help", "h"),
		boolF("print the version", "version", "v"),
	)
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case container.InitArg:
			container.Init()
			return
		case container.HoldArg:
			container.Hold()
			return
		}
	}
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	gfs := globalFlags()
	rest, err := gfs.parse(argv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime:", err)
		return 1
	}
	if gfs.Bool("version") {
		printVersion(os.Stdout)
		return 0
	}
	if gfs.Bool("help") || len(rest) == 0 {
		printUsage(os.Stdout, gfs)
		return 0
	}
	lg, err := newLogger(gfs.String("log"), gfs.String("log-format"), gfs.Bool("debug"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime:", err)
		return 1
	}
	defer lg.close()
	g := &globals{root: gfs.String("root"), log: lg, systemdCgroup: gfs.Bool("systemd-cgroup")}

	name := rest[0]
	cmd := findCommand(name)
	if cmd == nil {
		lg.errorf("No help topic for '%s'", name)
		return 1
	}
	fs := newFlagSet()
	if cmd.flags != nil {
		fs = cmd.flags()
	}
	fs.defs = append(fs.defs, boolF("show help", "help", "h"))
	fs.byName["help"], fs.byName["h"] = fs.defs[len(fs.defs)-1], fs.defs[len(fs.defs)-1]
	args, err := fs.parse(rest[1:])
	if err != nil {
		lg.errorf("%v", err)
		return 1
	}
	if fs.Bool("help") {
		printCommandHelp(os.Stdout, cmd, fs)
		return 0
	}
	lg.debugf("%s %q", name, args)
	ctx := context.Background()
	if err := cmd.run(ctx, g, fs, args); err != nil {
		var ec *exitCode
		if errors.As(err, &ec) {
			return ec.code
		}
		lg.errorf("%s", describe(cmd.name, err))
		return 1
	}
	return 0
}

// exitCode carries a container process's exit status out of run/exec.
type exitCode struct{ code int }

func (e *exitCode) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// describe turns sentinel errors into runc's messages.
func describe(cmd string, err error) string {
	switch {
	case errors.Is(err, container.ErrNotExist):
		return "container does not exist"
	case errors.Is(err, container.ErrExist):
		return "container with given ID already exists"
	case errors.Is(err, container.ErrNotRunning):
		return "container not running"
	}
	if cmd == "create" || cmd == "run" {
		return "berth-runtime " + cmd + " failed: " + err.Error()
	}
	return err.Error()
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "berth-runtime version %s\nspec: %s\n", version, specVersion())
}

func printUsage(w io.Writer, gfs *flagSet) {
	fmt.Fprintf(w, `NAME:
   berth-runtime - berth's OCI runtime (runc-compatible command line)

USAGE:
   berth-runtime [global options] command [command options] [arguments...]

COMMANDS:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "   %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nGLOBAL OPTIONS:\n%s", gfs.usage())
}

func printCommandHelp(w io.Writer, c *command, fs *flagSet) {
	fmt.Fprintf(w, "NAME:\n   berth-runtime %s - %s\n\nUSAGE:\n   berth-runtime %s [command options] %s\n", c.name, c.summary, c.name, c.args)
	if c.help != "" {
		fmt.Fprintf(w, "\nDESCRIPTION:\n%s\n", indent(c.help))
	}
	fmt.Fprintf(w, "\nOPTIONS:\n%s", fs.usage())
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "   " + l
	}
	return strings.Join(lines, "\n")
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

// logger writes runc-style log lines: to the --log file when given (text
// or JSON), otherwise to stderr.
type logger struct {
	file   *os.File
	json   bool
	debug  bool
	toFile bool
}

func newLogger(path, format string, debug bool) (*logger, error) {
	l := &logger{debug: debug}
	switch format {
	case "text", "":
	case "json":
		l.json = true
	default:
		return nil, fmt.Errorf("invalid log-format: %s", format)
	}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log file: %w", err)
		}
		l.file, l.toFile = f, true
	} else {
		l.file = os.Stderr
	}
	return l, nil
}

func (l *logger) close() {
	if l.toFile {
		l.file.Close()
	}
}

func (l *logger) line(level, msg string) string {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if l.json {
		b, _ := json.Marshal(struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Time  string `json:"time"`
		}{level, msg, now})
		return string(b) + "\n"
	}
	q, _ := json.Marshal(msg)
	return fmt.Sprintf("time=%q level=%s msg=%s\n", now, level, q)
}

func (l *logger) errorf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	io.WriteString(l.file, l.line("error", msg))
	if l.toFile {
		fmt.Fprintln(os.Stderr, msg)
	}
}

func (l *logger) warnf(format string, a ...any) {
	io.WriteString(l.file, l.line("warning", fmt.Sprintf(format, a...)))
}

func (l *logger) debugf(format string, a ...any) {
	if l.debug {
		io.WriteString(l.file, l.line("debug", fmt.Sprintf(format, a...)))
	}
}
