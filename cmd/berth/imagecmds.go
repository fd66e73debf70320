package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/berth-engine/berth/image"
	imgarchive "github.com/berth-engine/berth/image/archive"
	"github.com/berth-engine/berth/image/reference"
	"github.com/berth-engine/berth/internal/format"
	"github.com/berth-engine/berth/internal/progress"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// imageCommand is `berth image`, the group docker and podman also have.
func (a *app) imageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images",
		Long:  "Manage local images: the same commands as the top-level ones (pull, push, images, rmi, ...), grouped.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(
		a.pullCommand(),
		a.pushCommand(),
		a.imagesCommand("ls"),
		a.tagCommand(),
		a.rmiCommand("rm"),
		a.historyCommand(),
		a.saveCommand(),
		a.loadCommand(),
		a.importCommand(),
		a.imageInspectCommand(),
		a.imagePruneCommand(),
	)
	return cmd
}

func (a *app) tagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Long: `Give a local image another name. SOURCE_IMAGE is a name or an image ID (or
a unique prefix of one); TARGET_IMAGE gets the tag "latest" when it has none. A
name that pointed at another image moves, leaving that image untagged if it has
no other name.`,
		Example: `  berth tag busybox localhost:5000/tools/busybox:1.36`,
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.imageStore(cmd)
			if err != nil {
				return err
			}
			return store.Tag(cmd.Context(), args[0], args[1])
		},
	}
}

func (a *app) rmiCommand(use string) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] IMAGE [IMAGE...]",
		Aliases: aliasesFor(use, "rmi", "remove"),
		Short:   "Remove one or more images",
		Long: `Remove images by name or ID, as docker does:

  - by name: the name is removed; the image too when it was its last name;
  - by ID: the image and all its names (names in several repositories need -f);
  - an image a container uses is refused; -f untags it instead (never while a
    container runs it).

The blobs and unpacked layers nothing else uses are deleted and the space
freed is reported.`,
		Example: `  berth rmi busybox
  berth rmi -f 0123456789ab`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.imageStore(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			var failed []string
			for _, ref := range args {
				res, err := store.Remove(ctx, ref, force)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
					failed = append(failed, ref)
					continue
				}
				for _, u := range res.Untagged {
					fmt.Fprintln(out, "Untagged:", u)
				}
				for _, d := range res.Deleted {
					fmt.Fprintln(out, "Deleted:", d)
				}
			}
			if !noPrune {
				gc, err := store.GC(ctx)
				if err != nil {
					return err
				}
				if gc.Reclaimed > 0 {
					fmt.Fprintf(out, "Total reclaimed space: %s\n", units.HumanSizeWithPrecision(float64(gc.Reclaimed), 3))
				}
			}
			if len(failed) > 0 {
				return silentError{fmt.Errorf("could not remove %s", strings.Join(failed, ", "))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "do not delete the unreferenced blobs and layers now")
	return cmd
}

// silentError is an error already reported to the user: berth exits 1
// without printing it again.
type silentError struct{ err error }

func (e silentError) Error() string { return e.err.Error() }
func (e silentError) Unwrap() error { return e.err }

// historyRow is one line of `berth history`.
type historyRow struct {
	ID           string
	CreatedSince string
	CreatedAt    string
	CreatedBy    string
	Size         string
	Comment      string
}

func (a *app) historyCommand() *cobra.Command {
	var (
		human, noTrunc, quiet bool
		formatStr             string
	)
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Long: `Show the steps that made an image, newest first, with the size each step's
layer adds. Steps whose intermediate image is not local show <missing>, as
docker does. --format fields: .ID, .CreatedSince, .CreatedAt, .CreatedBy, .Size,
.Comment.`,
		Example: `  berth history busybox
  berth history --no-trunc --format '{{.CreatedBy}}' busybox`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.imageStore(cmd)
			if err != nil {
				return err
			}
			img, err := store.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			hist, err := store.History(cmd.Context(), img)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, h := range hist {
					if h.ID == "<missing>" {
						fmt.Fprintln(out, h.ID)
					} else {
						fmt.Fprintln(out, displayID(h.ID, noTrunc))
					}
				}
				return nil
			}
			tmpl, err := format.Parse(formatStr, "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
				map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"})
			if err != nil {
				return usageError{err}
			}
			var items []any
			for _, h := range hist {
				r := historyRow{ID: h.ID, CreatedBy: h.CreatedBy, Comment: h.Comment}
				if h.ID != "<missing>" {
					r.ID = displayID(h.ID, noTrunc)
				}
				if !noTrunc {
					r.CreatedBy = ellipsis(strings.ReplaceAll(r.CreatedBy, "\t", " "), 45)
				}
				if human {
					r.CreatedSince = units.HumanDuration(time.Since(h.Created)) + " ago"
					r.CreatedAt = h.Created.Local().Format(time.RFC3339)
					r.Size = units.HumanSizeWithPrecision(float64(h.Size), 3)
				} else {
					r.CreatedSince = h.Created.Format(time.RFC3339)
					r.CreatedAt = r.CreatedSince
					r.Size = fmt.Sprint(h.Size)
				}
				items = append(items, r)
			}
			return tmpl.Execute(out, items)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.StringVar(&formatStr, "format", "", "format the output with a Go template, 'table TEMPLATE' or 'json'")
	return cmd
}

// ellipsis truncates s to n characters with "…", as docker's history does.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func (a *app) imageInspectCommand() *cobra.Command {
	var formatStr string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Long: `Print a JSON array with docker's image inspect shape (Id, RepoTags,
RepoDigests, Created, Config, Architecture, Os, Size, GraphDriver, RootFS,
Metadata, ...), or apply a Go template to each image with --format.`,
		Example: `  berth image inspect busybox
  berth image inspect --format '{{.Id}} {{.Config.Cmd}}' busybox`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.imageStore(cmd)
			if err != nil {
				return err
			}
			tmpl, err := format.ParseInspect(formatStr)
			if err != nil {
				return usageError{err}
			}
			var items []any
			var errs []error
			for _, ref := range args {
				img, err := store.Get(cmd.Context(), ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				v, err := inspectImage(cmd.Context(), store, img)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				items = append(items, v)
			}
			if err := tmpl.Execute(cmd.OutOrStdout(), items); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&formatStr, "format", "f", "", "format the output with a Go template or 'json'")
	return cmd
}

func (a *app) imagePruneCommand() *cobra.Command {
	var (
		all, force bool
		filters    []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Long: `Remove dangling images (without a name), or with -a every image no container
uses, then delete the blobs and layers nothing references and report the space
reclaimed. Filters: until=TIMESTAMP, label=KEY[=VALUE], label!=KEY[=VALUE].`,
		Example: `  berth image prune -f
  berth image prune -a -f --filter until=24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				what := "all dangling images"
				if all {
					what = "all images without at least one container associated to them"
				}
				ok, err := confirm(cmd, "WARNING! This will remove "+what+".\nAre you sure you want to continue? [y/N] ")
				if err != nil || !ok {
					return err
				}
			}
			store, err := a.imageStore(cmd)
			if err != nil {
				return err
			}
			keep, err := pruneKeep(cmd, store, filters)
			if err != nil {
				return err
			}
			removed, gc, err := store.Prune(cmd.Context(), all, keep)
			out := cmd.OutOrStdout()
			if len(removed) > 0 {
				fmt.Fprintln(out, "Deleted Images:")
				for _, r := range removed {
					for _, u := range r.Untagged {
						fmt.Fprintln(out, "untagged:", u)
					}
					for _, d := range r.Deleted {
						fmt.Fprintln(out, "deleted:", d)
					}
				}
				fmt.Fprintln(out)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Total reclaimed space: %s\n", units.HumanSizeWithPrecision(float64(gc.Reclaimed), 3))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. 'until=<timestamp>')")
	return cmd
}

// pruneKeep builds the predicate of images a prune's filters protect.
func pruneKeep(cmd *cobra.Command, store *image.Store, filters []string) (func(*image.Image) bool, error) {
	if len(filters) == 0 {
		return nil, nil
	}
	var until *time.Time
	type labelF struct {
		k, v       string
		hasV, want bool
	}
	var labels []labelF
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, usagef("bad format of filter (expected name=value): %s", f)
		}
		switch k {
		case "until":
			t, err := parseTimestamp(v, time.Now())
			if err != nil {
				return nil, usagef("invalid filter 'until=%s': %v", v, err)
			}
			until = &t
		case "label", "label!":
			lk, lv, hasV := strings.Cut(v, "=")
			labels = append(labels, labelF{lk, lv, hasV, k == "label"})
		default:
			return nil, usagef("invalid filter '%s'", k)
		}
	}
	ctx := cmd.Context()
	return func(img *image.Image) bool {
		cfg, err := store.Config(ctx, img)
		if err != nil {
			return true
		}
		created := img.Created
		if cfg.Created != nil {
			created = *cfg.Created
		}
		if until != nil && !created.Before(*until) {
			return true
		}
		for _, l := range labels {
			got, ok := cfg.Config.Labels[l.k]
			has := ok && (!l.hasV || got == l.v)
			if has != l.want {
				return true
			}
		}
		return false
	}, nil
}

// confirm asks a yes/no question on the terminal.
func confirm(cmd *cobra.Command, prompt string) (bool, error) {
	fmt.Fprint(cmd.OutOrStdout(), prompt)
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, err
	}
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes", nil
}

func (a *app) saveCommand() *cobra.Command {
	var output, formatName string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Long: `Write images to a tar archive: a docker-archive by default (which docker load,
podman load and berth load read; it is also an OCI image layout), or an OCI
image layout archive with --format oci-archive (blobs kept as stored, whole
multi-platform indexes kept).`,
		Example: `  berth save -o busybox.tar busybox
  berth save --format oci-archive busybox alpine > images.tar`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmtv, err := imgarchive.ParseFormat(formatName)
			if err != nil {
				return usageError{err}
			}
			var w io.Writer = cmd.OutOrStdout()
			if output == "" && isTerminal(w) {
				return usagef("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			store, err := a.imageStore(cmd)
			if err != nil {
				return err
			}
			if output == "" {
				return store.Save(cmd.Context(), w, args, image.SaveOptions{Format: fmtv})
			}
			return writeFileAtomic(output, func(w io.Writer) error {
				return store.Save(cmd.Context(), w, args, image.SaveOptions{Format: fmtv})
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file instead of STDOUT")
	cmd.Flags().StringVar(&formatName, "format", "docker-archive", "archive format: docker-archive or oci-archive")
	return cmd
}

// writeFileAtomic writes a file through a temporary sibling renamed into
// place, so that a failed save never leaves a truncated archive behind.
func writeFileAtomic(path string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(dirOf(path), ".berth-save-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	bw := bufio.NewWriterSize(f, 1<<20)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		if i == 0 {
			return "/"
		}
		return path[:i]
	}
	return "."
}

func (a *app) loadCommand() *cobra.Command {
	var (
		input    string
		quiet    bool
		platform string
	)
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load images from a tar archive or STDIN",
		Long: `Read a docker-archive (docker save, podman save, berth save) or an OCI image
layout archive, possibly compressed, and add its images under the names it
gives them.`,
		Example: `  berth load -i busybox.tar
  gzip -dc images.tar.gz | berth load`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pl, err := platformFlag(platform)
			if err != nil {
				return err
			}
			var r io.Reader = cmd.InOrStdin()
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			} else if isTerminal(r) {
				return usagef("requested load from stdin, but stdin is empty: use -i FILE or redirect")
			}
			store, err := a.imageStore(cmd)
			if err != nil {
				return err
			}
			mode := progress.Auto
			if quiet {
				mode = progress.Quiet
			}
			p := progress.New(cmd.ErrOrStderr(), mode)
			res, err := store.Load(cmd.Context(), r, image.LoadOptions{Platform: pl, Progress: p})
			p.Close()
			out := cmd.OutOrStdout()
			for _, l := range res {
				if len(l.Names) == 0 {
					fmt.Fprintln(out, "Loaded image ID:", l.Image.ID)
				}
				for _, n := range l.Names {
					fmt.Fprintln(out, "Loaded image:", familiarName(n))
				}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from a tar archive file instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load progress")
	cmd.Flags().StringVar(&platform, "platform", "", "platform to unpack from multi-platform archives")
	return cmd
}

func familiarName(full string) string {
	r, err := reference.Parse(full)
	if err != nil {
		return full
	}
	return r.Familiar()
}

func (a *app) importCommand() *cobra.Command {
	var (
		changes  []string
		message  string
		platform string
	)
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Long: `Create a one-layer image from a root filesystem tarball (plain, gzip or zstd)
read from a file, an http(s) URL or STDIN ("-"). --change applies Dockerfile
instructions to the image configuration: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR. Prints the new image's ID.`,
		Example: `  berth import rootfs.tar.gz myimage:1
  tar -C rootfs -c . | berth import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - myimage`,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pl, err := platformFlag(platform)
			if err != nil {
				return err
			}
			opts := image.ImportOptions{Changes: changes, Message: message, Source: args[0], Platform: pl}
			if len(args) == 2 {
				opts.Name = args[1]
			}
			var r io.Reader
			switch src := args[0]; {
			case src == "-":
				r = cmd.InOrStdin()
			case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
				req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, src, nil)
				if err != nil {
					return err
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return fmt.Errorf("import %s: %w", src, err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("import %s: %s", src, resp.Status)
				}
				r = resp.Body
			default:
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			store, err := a.imageStore(cmd)
			if err != nil {
				return err
			}
			img, err := store.Import(cmd.Context(), r, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply a Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "set the commit message of the imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "set the platform (os/arch[/variant]) of the image")
	return cmd
}
