package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/berth-engine/berth/image"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/reference"
	"github.com/berth-engine/berth/internal/progress"
	"github.com/spf13/cobra"
)

func (a *app) pullCommand() *cobra.Command {
	var (
		platform string
		quiet    bool
		allTags  bool
	)
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Long: `Download an image from a registry into the local store.

NAME is normalised as docker does: "busybox" is docker.io/library/busybox:latest.
For a multi-platform image, the manifest of --platform (default: this host's)
is selected. Layers download in parallel and are unpacked while they download;
an interrupted pull resumes where it stopped.

Registries, mirrors, insecure (plain HTTP) registries and CA directories are set
in berth's configuration file (see --config); credentials come from
'berth login'.`,
		Example: `  berth pull busybox
  berth pull --platform linux/arm64 registry.example.com/team/app:1.4
  berth pull localhost:5000/app@sha256:0123...
  berth pull --all-tags localhost:5000/app`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pl, err := platformFlag(platform)
			if err != nil {
				return err
			}
			return a.pull(cmd, args[0], pl, quiet, allTags)
		},
	}
	f := cmd.Flags()
	f.StringVar(&platform, "platform", "", "platform to pull: os/arch[/variant] (default: this host's)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the image's name when done")
	f.BoolVarP(&allTags, "all-tags", "a", false, "pull every tagged image of the repository")
	return cmd
}

func (a *app) pull(cmd *cobra.Command, name string, pl *manifest.Platform, quiet, allTags bool) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	ref, err := reference.Parse(name)
	if err != nil {
		return err
	}
	if ref.IsID() {
		return fmt.Errorf("%s: an image ID cannot be pulled; give a repository name", name)
	}
	store, err := a.imageStore(cmd)
	if err != nil {
		return err
	}
	refs := []reference.Ref{ref}
	if allTags {
		if hasTagOrDigest(name) {
			return usagef("tag can't be used with --all-tags/-a")
		}
		tags, err := a.tags(cmd, ref)
		if err != nil {
			return err
		}
		refs = refs[:0]
		for _, t := range tags {
			r, err := reference.Parse(ref.Repository() + ":" + t)
			if err != nil {
				return err
			}
			refs = append(refs, r)
		}
	} else if !quiet && !hasTagOrDigest(name) {
		fmt.Fprintln(out, "Using default tag: latest")
	}
	for _, r := range refs {
		if err := a.pullOne(ctx, store, out, r, pl, quiet); err != nil {
			return err
		}
	}
	if allTags && !quiet {
		fmt.Fprintln(out, ref.Repository())
	}
	return nil
}

func (a *app) pullOne(ctx context.Context, store *image.Store, out io.Writer, ref reference.Ref, pl *manifest.Platform, quiet bool) error {
	mode := progress.Auto
	if quiet {
		mode = progress.Quiet
	}
	p := progress.New(out, mode)
	if !quiet {
		what := ref.Tag()
		if ref.Digest() != "" {
			what = ref.Digest().String()
		}
		p.Printf("%s: Pulling from %s", what, repoPath(ref))
	}
	res, err := store.Pull(ctx, ref, image.PullOptions{Platform: pl, Progress: p})
	p.Close()
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(out, "Digest: %s\n", res.Digest)
		if res.Downloaded {
			fmt.Fprintf(out, "Status: Downloaded newer image for %s\n", ref.Familiar())
		} else {
			fmt.Fprintf(out, "Status: Image is up to date for %s\n", ref.Familiar())
		}
	}
	fmt.Fprintln(out, ref.String())
	return nil
}

// repoPath is the repository path docker prints in "Pulling from"
// (without the registry).
func repoPath(ref reference.Ref) string {
	return ref.Path()
}

// hasTagOrDigest reports whether the user's reference spelled a tag or a
// digest (docker then omits "Using default tag").
func hasTagOrDigest(s string) bool {
	if strings.Contains(s, "@") {
		return true
	}
	last := s[strings.LastIndex(s, "/")+1:]
	return strings.Contains(last, ":")
}

func (a *app) tags(cmd *cobra.Command, ref reference.Ref) ([]string, error) {
	rc, err := a.remoteClient(cmd)
	if err != nil {
		return nil, err
	}
	tags, err := rc.Tags(cmd.Context(), ref)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", ref.Repository(), err)
	}
	return tags, nil
}

func (a *app) pushCommand() *cobra.Command {
	var (
		quiet   bool
		allTags bool
	)
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Long: `Upload a local image to the registry its name points at.

Blobs the registry already has are skipped, blobs pulled from another repository
of the same registry are mounted from there, the rest upload in parallel; the
manifest (and tag) is written last. A multi-platform image whose platforms are
all local is pushed as its index; otherwise the local platform's manifest.`,
		Example: `  berth tag busybox localhost:5000/busybox:1
  berth push localhost:5000/busybox:1
  berth push --all-tags localhost:5000/busybox`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.push(cmd, args[0], quiet, allTags)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress progress output")
	cmd.Flags().BoolVarP(&allTags, "all-tags", "a", false, "push every local tag of the repository")
	return cmd
}

func (a *app) push(cmd *cobra.Command, name string, quiet, allTags bool) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	ref, err := reference.Parse(name)
	if err != nil {
		return err
	}
	if ref.IsID() || ref.Digest() != "" {
		return usagef("%s: push needs a repository name with an optional tag", name)
	}
	store, err := a.imageStore(cmd)
	if err != nil {
		return err
	}
	refs := []reference.Ref{ref}
	if allTags {
		if hasTagOrDigest(name) {
			return usagef("tag can't be used with --all-tags/-a")
		}
		imgs, err := store.List(ctx)
		if err != nil {
			return err
		}
		refs = refs[:0]
		for _, img := range imgs {
			for _, n := range img.Names {
				r, err := reference.Parse(n.Ref)
				if err == nil && r.Repository() == ref.Repository() {
					refs = append(refs, r)
				}
			}
		}
		if len(refs) == 0 {
			return fmt.Errorf("%w: no local tag of %s", image.ErrNotFound, ref.Familiar())
		}
	}
	if !quiet {
		fmt.Fprintf(out, "The push refers to repository [%s]\n", ref.Repository())
	}
	for _, r := range refs {
		mode := progress.Auto
		if quiet {
			mode = progress.Quiet
		}
		p := progress.New(out, mode)
		res, err := store.Push(ctx, r, image.PushOptions{Progress: p})
		p.Close()
		if err != nil {
			return err
		}
		if !quiet {
			if res.Partial {
				fmt.Fprintf(out, "Note: only the %s manifest is local; pushed it in place of the multi-platform index\n", store.Platform())
			}
			fmt.Fprintf(out, "%s: digest: %s size: %d\n", r.Tag(), res.Digest, res.Size)
		}
	}
	return nil
}

// exactArgs is cobra.ExactArgs with docker's wording and berth's usage
// exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%q requires exactly %d argument(s).\nSee '%s --help'.\n\nUsage:  %s", cmd.CommandPath(), n, cmd.CommandPath(), cmd.UseLine())
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with docker's wording.
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%q requires at least %d argument(s).\nSee '%s --help'.\n\nUsage:  %s", cmd.CommandPath(), n, cmd.CommandPath(), cmd.UseLine())
		}
		return nil
	}
}

// rangeArgs accepts between min and max arguments.
func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return usagef("%q requires at least %d and at most %d argument(s).\nSee '%s --help'.\n\nUsage:  %s", cmd.CommandPath(), min, max, cmd.CommandPath(), cmd.UseLine())
		}
		return nil
	}
}

// platformFlag parses a --platform value; "" means the default (nil).
func platformFlag(s string) (*manifest.Platform, error) {
	if s == "" {
		return nil, nil
	}
	p, err := manifest.ParsePlatform(s)
	if err != nil {
		return nil, usagef("--platform: %v", err)
	}
	return &p, nil
}
