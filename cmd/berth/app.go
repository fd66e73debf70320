package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-engine/berth/image"
	"github.com/berth-engine/berth/image/credentials"
	"github.com/berth-engine/berth/image/remote"
	"github.com/berth-engine/berth/internal/config"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Defaults of the global flags.
const (
	defaultRoot    = "/var/lib/berth"
	defaultRunRoot = "/run/berth"
)

// app holds the global flags and what commands open lazily from them.
type app struct {
	root       string
	runRoot    string
	configPath string
	authfile   string
	logLevel   string

	cfg    *config.Config
	images *image.Store
	creds  *credentials.Store

	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// config loads berth's configuration file once.
func (a *app) config(cmd *cobra.Command) (*config.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	explicit := cmd.Flags().Changed("config") || os.Getenv("BERTH_CONFIG") != ""
	path := a.configPath
	if !cmd.Flags().Changed("config") && os.Getenv("BERTH_CONFIG") != "" {
		path = os.Getenv("BERTH_CONFIG")
	}
	cfg, err := config.Load(path, explicit)
	if err != nil {
		return nil, err
	}
	a.cfg = cfg
	return cfg, nil
}

// credentialStore opens the docker-compatible credentials file.
func (a *app) credentialStore() (*credentials.Store, error) {
	if a.creds != nil {
		return a.creds, nil
	}
	cs, err := credentials.Open(a.authfile)
	if err != nil {
		return nil, err
	}
	a.creds = cs
	return cs, nil
}

// remoteClient builds the registry client from the configuration and the
// credentials.
func (a *app) remoteClient(cmd *cobra.Command) (*remote.Client, error) {
	cfg, err := a.config(cmd)
	if err != nil {
		return nil, err
	}
	cs, err := a.credentialStore()
	if err != nil {
		return nil, err
	}
	return remote.New(remote.Options{
		Hosts: func(host string) remote.HostConfig {
			r := cfg.Registry(host)
			hc := remote.HostConfig{Insecure: r.Insecure, CADir: r.CADir}
			for _, m := range r.Mirrors {
				hc.Mirrors = append(hc.Mirrors, m.Scheme+"://"+m.Host)
			}
			return hc
		},
		Credentials: func(ctx context.Context, host string) (string, string, error) {
			c, err := cs.Get(ctx, host)
			if err != nil {
				return "", "", err
			}
			if c.IdentityToken != "" {
				return "", c.IdentityToken, nil
			}
			return c.Username, c.Secret, nil
		},
		UserAgent: "berth/" + version,
	}), nil
}

// imageStore opens the image store under --root once.
func (a *app) imageStore(cmd *cobra.Command) (*image.Store, error) {
	if a.images != nil {
		return a.images, nil
	}
	cfg, err := a.config(cmd)
	if err != nil {
		return nil, err
	}
	rc, err := a.remoteClient(cmd)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("berth needs root for now (its store is %s): run it with sudo", a.root)
	}
	s, err := image.Open(filepath.Join(a.root, "image"), image.Options{
		Snapshotter: cfg.Storage.Driver,
		Remote:      rc,
	})
	if err != nil {
		return nil, err
	}
	a.images = s
	return s, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// usageError marks errors in how a command was called (exit code 125, as
// docker's CLI uses for its own errors).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode maps an error to berth's exit status: 125 for a command used
// wrongly, 1 for everything else (docker's CLI convention). Later
// commands (run, exec) add their own codes here, in this one place.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 125
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "unknown shorthand flag") ||
		strings.HasPrefix(msg, "unknown command") || strings.Contains(msg, "flag needs an argument") ||
		strings.HasPrefix(msg, `invalid argument "`) {
		return 125
	}
	return 1
}

// errorText turns an error into the message berth prints after "Error: ".
func errorText(err error) string {
	return err.Error()
}
