package main

import (
	"fmt"

	"github.com/berth-engine/berth/image"
	"github.com/berth-engine/berth/internal/format"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

func (a *app) systemCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Manage berth",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(a.systemDfCommand())
	return cmd
}

// dfRow is one line of `berth system df`.
type dfRow struct {
	Type        string
	TotalCount  int
	Active      int
	Size        string
	Reclaimable string
}

func (a *app) systemDfCommand() *cobra.Command {
	var (
		verbose   bool
		formatStr string
	)
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Long: `Show the disk space berth's state takes, measured on disk: images count their
blobs (as pulled, compressed) and their unpacked layers, each once however many
images share it. RECLAIMABLE is what removing every image no container uses
would free, plus data no image references any more (freed by 'berth image
prune'). -v lists each image with its shared and unique size. --format
fields: .Type, .TotalCount, .Active, .Size, .Reclaimable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.imageStore(cmd)
			if err != nil {
				return err
			}
			du, err := store.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			size := func(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
			if verbose {
				fmt.Fprintln(out, "Images space usage:")
				fmt.Fprintln(out)
				tmpl, err := format.Parse("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}", "", imageHeaders)
				if err != nil {
					return err
				}
				var items []any
				for _, u := range du.Images {
					rs, err := imageRows(cmd.Context(), store, []*image.Image{u.Image}, false)
					if err != nil {
						return err
					}
					for _, r := range rs {
						r.Size = size(u.Size)
						r.SharedSize = size(u.SharedSize)
						r.UniqueSize = size(u.Size - u.SharedSize)
						r.Containers = fmt.Sprint(u.Containers)
						items = append(items, r)
					}
				}
				return tmpl.Execute(out, items)
			}
			tmpl, err := format.Parse(formatStr, "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
				map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"})
			if err != nil {
				return usageError{err}
			}
			// Leftovers no image references (removed with --no-prune,
			// or left by an interrupted pull) are on disk too, and
			// reclaimable.
			total := du.Total + du.Unreferenced
			reclaimable := du.Reclaimable + du.Unreferenced
			pct := 0
			if total > 0 {
				pct = int(reclaimable * 100 / total)
			}
			rows := []any{dfRow{
				Type: "Images", TotalCount: len(du.Images), Active: du.Active,
				Size: size(total), Reclaimable: fmt.Sprintf("%s (%d%%)", size(reclaimable), pct),
			}}
			return tmpl.Execute(out, rows)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show detailed information on space usage")
	cmd.Flags().StringVar(&formatStr, "format", "", "format the output with a Go template, 'table TEMPLATE' or 'json'")
	return cmd
}
