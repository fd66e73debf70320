package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-engine/berth/image/credentials"
	"github.com/berth-engine/berth/image/reference"
	"github.com/berth-engine/berth/image/remote"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// registryHost turns the SERVER argument of login/logout into a registry
// host ("" or a Docker Hub alias means docker.io).
func registryHost(arg string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(arg, "https://"), "http://")
	if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	switch h {
	case "", "index.docker.io", "registry-1.docker.io":
		return reference.DefaultDomain
	}
	return h
}

func (a *app) loginCommand() *cobra.Command {
	var (
		username, password string
		passwordStdin      bool
	)
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Long: `Check credentials against a registry (default: Docker Hub) and store them in
the docker-compatible credentials file (--authfile; default
$DOCKER_CONFIG/config.json or ~/.docker/config.json), or in the credential
helper it configures ("credsStore", "credHelpers": docker-credential-NAME).
Without -u/-p, berth asks on the terminal.`,
		Example: `  berth login localhost:5000
  echo "$TOKEN" | berth login -u ci --password-stdin registry.example.com`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			host := registryHost(server)
			out := cmd.OutOrStdout()
			if password != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passwordStdin {
					return usagef("--password and --password-stdin are mutually exclusive")
				}
			}
			in := bufio.NewReader(cmd.InOrStdin())
			if passwordStdin {
				if username == "" {
					return usagef("must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(in)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if username == "" {
				if !isTerminal(a.stdin) {
					return usagef("cannot perform an interactive login from a non TTY device: give --username and --password-stdin")
				}
				fmt.Fprint(out, "Username: ")
				line, err := in.ReadString('\n')
				if err != nil {
					return err
				}
				username = strings.TrimSpace(line)
				if username == "" {
					return errors.New("username is required")
				}
			}
			if password == "" {
				f, ok := a.stdin.(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return usagef("cannot read a password from a non TTY device: use --password-stdin")
				}
				fmt.Fprint(out, "Password: ")
				b, err := term.ReadPassword(int(f.Fd()))
				fmt.Fprintln(out)
				if err != nil {
					return err
				}
				password = string(b)
				if password == "" {
					return errors.New("password is required")
				}
			}
			rc, err := a.remoteClient(cmd)
			if err != nil {
				return err
			}
			if err := rc.Ping(cmd.Context(), host, username, password); err != nil {
				if errors.Is(err, remote.ErrUnauthorized) {
					return fmt.Errorf("login to %s: unauthorized: incorrect username or password", host)
				}
				return fmt.Errorf("login to %s: %w", host, err)
			}
			cs, err := a.credentialStore()
			if err != nil {
				return err
			}
			if err := cs.Put(cmd.Context(), host, credentials.Credential{Username: username, Secret: password}); err != nil {
				return err
			}
			fmt.Fprintln(out, "Login Succeeded")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&username, "username", "u", "", "user name")
	f.StringVarP(&password, "password", "p", "", "password (insecure: prefer --password-stdin)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from STDIN")
	return cmd
}

func (a *app) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "Remove the stored credentials of a registry (default: Docker Hub).",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			host := registryHost(server)
			cs, err := a.credentialStore()
			if err != nil {
				return err
			}
			key := credentials.ServerKey(host)
			err = cs.Erase(cmd.Context(), host)
			if errors.Is(err, credentials.ErrNotLoggedIn) {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", key)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", key)
			return nil
		},
	}
}
