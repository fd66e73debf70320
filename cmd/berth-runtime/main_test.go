package main

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-engine/berth/runtime/container"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want unix.Signal
		ok   bool
	}{
		{"TERM", unix.SIGTERM, true},
		{"SIGTERM", unix.SIGTERM, true},
		{"sigkill", unix.SIGKILL, true},
		{"9", unix.SIGKILL, true},
		{"KILL", unix.SIGKILL, true},
		{"HUP", unix.SIGHUP, true},
		{"SIGRTMIN", 34, true},
		{"RTMIN+3", 37, true},
		{"SIGRTMAX-1", 63, true},
		{"SIGRTMIN+40", 0, false},
		{"SIGRTMAX+1", 0, false},
		{"SIGRTMIN-1", 0, false},
		{"SIGRTMIN+", 0, false},
		{"SIGRTMAX--1", 0, false},
		{"SIGRTMAX", 64, true},
		{"0", 0, false},
		{"65", 0, false},
		{"FOO", 0, false},
		{"", 0, false},
	} {
		got, err := parseSignal(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, container.ErrInvalidInput) {
			t.Errorf("parseSignal(%q) error %v is not ErrInvalidInput", tc.in, err)
		}
	}
}

func TestFlagParsing(t *testing.T) {
	fs := newFlagSet(
		strF("bundle", "", "bundle", "b"),
		boolF("detach", "detach", "d"),
		listF("env", "env", "e"),
		intF("fds", "0", "preserve-fds"),
	)
	rest, err := fs.parse([]string{"-b", "/x", "--detach", "-e", "A=1", "--env=B=2", "--preserve-fds=3", "id", "cmd", "-e", "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if fs.String("bundle") != "/x" || !fs.Bool("detach") || fs.Int("preserve-fds") != 3 {
		t.Fatalf("values: %q %v %d", fs.String("bundle"), fs.Bool("detach"), fs.Int("preserve-fds"))
	}
	if env := fs.List("env"); len(env) != 2 || env[0] != "A=1" || env[1] != "B=2" {
		t.Fatalf("env %v", env)
	}
	if len(rest) != 4 || rest[0] != "id" || rest[2] != "-e" {
		t.Fatalf("rest %v", rest)
	}
	for _, bad := range [][]string{{"--nope"}, {"--bundle"}, {"--preserve-fds", "x"}, {"--detach=maybe"}} {
		if _, err := newFlagSet(strF("", "", "bundle"), intF("", "0", "preserve-fds"), boolF("", "detach")).parse(bad); err == nil {
			t.Errorf("parse(%v) succeeded", bad)
		}
	}
	rest, _ = newFlagSet().parse([]string{"--", "-x"})
	if len(rest) != 1 || rest[0] != "-x" {
		t.Fatalf("after --: %v", rest)
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		err  error
		want string
	}{
		{"state", container.ErrNotExist, "container does not exist"},
		{"create", container.ErrExist, "container with given ID already exists"},
		{"kill", container.ErrNotRunning, "container not running"},
		{"create", errors.New("boom"), "berth-runtime create failed: boom"},
		{"kill", errors.New("boom"), "boom"},
	} {
		if got := describe(tc.cmd, tc.err); got != tc.want {
			t.Errorf("describe(%s, %v) = %q, want %q", tc.cmd, tc.err, got, tc.want)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--version"}, 0},
		{[]string{"--help"}, 0},
		{[]string{"--nope"}, 1},
		{[]string{"--root", root, "bogus"}, 1},
		{[]string{"--root", root, "state", "missing"}, 1},
		{[]string{"--root", root, "kill", "missing", "NOSIG"}, 1},
		{[]string{"--root", root, "list", "-q"}, 0},
		{[]string{"--root", root, "delete", "-f", "missing"}, 0},
		{[]string{"--root", root, "--log-format", "xml", "list"}, 1},
		{[]string{"--root", root, "state", "--help"}, 0},
	} {
		if got := run(tc.args); got != tc.code {
			t.Errorf("run(%v) = %d, want %d", tc.args, got, tc.code)
		}
	}
}
