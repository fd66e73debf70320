// Command berth is the daemonless container engine's command line.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"
)

// version is set at build time.
var version = "dev"

func newRootCommand() *cobra.Command {
	return newApp(os.Stdin, os.Stdout, os.Stderr).rootCommand()
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "A daemonless container engine",
		Long: `berth runs OCI containers with its own runtime, stores and moves images,
builds them from Dockerfiles and serves them from a registry.

Every command works directly on the state under --root; there is no daemon.
The OCI runtime is a separate binary, berth-runtime, with runc's command line.

Exit status: 0 on success, 125 when berth itself was called wrongly (unknown
flag, bad arguments), 1 when the operation failed.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nSee '%s --help'", err, cmd.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.root, "root", defaultRoot, "directory of berth's persistent state (images, containers, volumes)")
	pf.StringVar(&a.runRoot, "run-root", defaultRunRoot, "directory of berth's runtime state")
	pf.StringVar(&a.configPath, "config", "/etc/berth/berth.toml", "berth's configuration file (also $BERTH_CONFIG)")
	pf.StringVar(&a.authfile, "authfile", "", "registry credentials file (docker's config.json format; default $DOCKER_CONFIG/config.json or ~/.docker/config.json)")
	pf.StringVar(&a.logLevel, "log-level", "warn", "log level: debug, info, warn or error")

	root.AddCommand(
		newVersionCommand(),
		a.pullCommand(),
		a.pushCommand(),
		a.imagesCommand("images"),
		a.tagCommand(),
		a.rmiCommand("rmi"),
		a.historyCommand(),
		a.saveCommand(),
		a.loadCommand(),
		a.importCommand(),
		a.loginCommand(),
		a.logoutCommand(),
		a.imageCommand(),
		a.systemCommand(),
	)
	return root
}

func newVersionCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "", "text":
				fmt.Fprintf(cmd.OutOrStdout(), "berth version %s\ngo: %s\nplatform: %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			case "json":
				fmt.Fprintf(cmd.OutOrStdout(), "{\"version\":%q,\"go\":%q,\"os\":%q,\"arch\":%q}\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			default:
				return usagef("unknown --format %q: use text or json", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes berth with args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := newApp(stdin, stdout, stderr).rootCommand()
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		var se silentError
		if !errors.As(err, &se) {
			fmt.Fprintln(stderr, "Error:", errorText(err))
		}
		return exitCode(err)
	}
	return 0
}
