// Command berth is the daemonless container engine's command line.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"
)

// version is set at build time.
var version = "dev"

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "A daemonless container engine",
		Long: `berth runs OCI containers with its own runtime, stores and moves images,
builds them from Dockerfiles and serves them from a registry.

The OCI runtime is a separate binary, berth-runtime, with runc's command line.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCommand())
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
				return fmt.Errorf("unknown --format %q: use text or json", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}
