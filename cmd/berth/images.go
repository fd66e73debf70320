package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-engine/berth/image"
	"github.com/berth-engine/berth/image/reference"
	"github.com/berth-engine/berth/internal/format"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// imageRow is one line of `berth images`; its fields are what --format
// templates see (docker's names).
type imageRow struct {
	ID           string
	Repository   string
	Tag          string
	Digest       string
	CreatedSince string
	CreatedAt    string
	Size         string
	SharedSize   string
	UniqueSize   string
	VirtualSize  string
	Containers   string

	created time.Time
	img     *image.Image
	cfg     *image.ConfigFile
}

var imageHeaders = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
	"SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
	"Containers": "CONTAINERS",
}

func (a *app) imagesCommand(use string) *cobra.Command {
	var (
		quiet, digests, noTrunc, all bool
		formatStr                    string
		filters                      []string
	)
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] [REPOSITORY[:TAG]]",
		Aliases: aliasesFor(use, "list"),
		Short:   "List images",
		Long: `List local images: one line per name (REPOSITORY:TAG), plus untagged images.

Filters (--filter, repeatable; several values of one key are ORed, keys are ANDed):
  dangling=true|false     images without (or with) a name
  reference=PATTERN       names matching a shell pattern (busybox, "*/app:1.*")
  label=KEY or KEY=VALUE  images whose configuration has the label
  before=IMAGE            images created before IMAGE
  since=IMAGE             images created after IMAGE
  until=TIMESTAMP         images created before a time (RFC 3339, Unix seconds or a duration like 24h)

--format takes a Go template over the fields .ID, .Repository, .Tag, .Digest,
.CreatedSince, .CreatedAt, .Size, .SharedSize, .UniqueSize, .VirtualSize and
.Containers; "table TEMPLATE" adds a header row and "json" prints one JSON
object per line.`,
		Example: `  berth images
  berth images --digests busybox
  berth images --filter dangling=true -q
  berth images --format '{{.Repository}}:{{.Tag}} {{.Size}}'
  berth images --format json`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				filters = append(filters, "reference="+args[0])
			}
			return a.listImages(cmd, quiet, digests, noTrunc, formatStr, filters)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVar(&digests, "digests", false, "show digests")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&all, "all", "a", false, "show all images (berth keeps no intermediate images, so this changes nothing)")
	f.StringVar(&formatStr, "format", "", "format the output with a Go template, 'table TEMPLATE' or 'json'")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions (see above)")
	return cmd
}

func aliasesFor(use string, alias ...string) []string {
	if use == "images" || use == "rmi" {
		return nil
	}
	return alias
}

func (a *app) listImages(cmd *cobra.Command, quiet, digests, noTrunc bool, formatStr string, filterArgs []string) error {
	ctx := cmd.Context()
	store, err := a.imageStore(cmd)
	if err != nil {
		return err
	}
	imgs, err := store.List(ctx)
	if err != nil {
		return err
	}
	flt, err := parseImageFilters(ctx, store, filterArgs)
	if err != nil {
		return err
	}
	rows, err := imageRows(ctx, store, imgs, noTrunc)
	if err != nil {
		return err
	}
	var kept []imageRow
	for _, r := range rows {
		if flt.match(r) {
			kept = append(kept, r)
		}
	}
	out := cmd.OutOrStdout()
	if quiet {
		seen := map[string]bool{}
		for _, r := range kept {
			if !seen[r.ID] {
				seen[r.ID] = true
				fmt.Fprintln(out, r.ID)
			}
		}
		return nil
	}
	def := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	if digests {
		def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	tmpl, err := format.Parse(formatStr, def, imageHeaders)
	if err != nil {
		return usageError{err}
	}
	items := make([]any, len(kept))
	for i := range kept {
		items[i] = kept[i]
	}
	return tmpl.Execute(out, items)
}

// imageRows expands images into docker's rows: one per name, one per
// repository digest without a name of its repository, one for a dangling
// image. Newest image first, names sorted.
func imageRows(ctx context.Context, store *image.Store, imgs []*image.Image, noTrunc bool) ([]imageRow, error) {
	var rows []imageRow
	for _, img := range imgs {
		cfg, err := store.Config(ctx, img)
		if err != nil {
			return nil, err
		}
		created := img.Created
		if cfg.Created != nil {
			created = *cfg.Created
		}
		base := imageRow{
			ID:           displayID(img.ID.String(), noTrunc),
			Digest:       "<none>",
			CreatedSince: units.HumanDuration(time.Since(created)) + " ago",
			CreatedAt:    created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
			Size:         units.HumanSizeWithPrecision(float64(img.Size), 3),
			VirtualSize:  units.HumanSizeWithPrecision(float64(img.Size), 3),
			SharedSize:   "N/A",
			UniqueSize:   "N/A",
			Containers:   "N/A",
			created:      created,
			img:          img,
			cfg:          cfg,
		}
		digestFor := func(repo string) string {
			for _, rd := range img.RepoDigests {
				if r, d, ok := strings.Cut(rd, "@"); ok && r == repo {
					return d
				}
			}
			return "<none>"
		}
		named := map[string]bool{}
		for _, n := range img.Names {
			r, err := reference.Parse(n.Ref)
			if err != nil {
				continue
			}
			row := base
			row.Repository = familiarRepo(r)
			row.Tag = r.Tag()
			row.Digest = digestFor(r.Repository())
			named[r.Repository()] = true
			rows = append(rows, row)
		}
		for _, rd := range img.RepoDigests {
			r, err := reference.Parse(rd)
			if err != nil || named[r.Repository()] {
				continue
			}
			named[r.Repository()] = true
			row := base
			row.Repository = familiarRepo(r)
			row.Tag = "<none>"
			row.Digest = r.Digest().String()
			rows = append(rows, row)
		}
		if len(named) == 0 {
			row := base
			row.Repository, row.Tag = "<none>", "<none>"
			rows = append(rows, row)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if !rows[i].created.Equal(rows[j].created) {
			return rows[i].created.After(rows[j].created)
		}
		if rows[i].Repository != rows[j].Repository {
			return rows[i].Repository < rows[j].Repository
		}
		return rows[i].Tag < rows[j].Tag
	})
	return rows, nil
}

func familiarRepo(r reference.Ref) string {
	f := r.Familiar()
	if i := strings.IndexAny(f, "@"); i >= 0 {
		f = f[:i]
	}
	// Strip a trailing ":tag" (a colon after the last slash).
	if i := strings.LastIndex(f, ":"); i > strings.LastIndex(f, "/") {
		f = f[:i]
	}
	return f
}

// displayID is docker's image ID column: 12 hex characters, or the full
// "sha256:..." with --no-trunc.
func displayID(id string, noTrunc bool) string {
	if noTrunc {
		return id
	}
	_, hex, _ := strings.Cut(id, ":")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// imageFilters is a parsed set of --filter arguments.
type imageFilters struct {
	dangling *bool
	refs     []string
	labels   []string
	before   *time.Time
	since    *time.Time
	until    *time.Time
}

func parseImageFilters(ctx context.Context, store *image.Store, args []string) (*imageFilters, error) {
	f := &imageFilters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, usagef("bad format of filter (expected name=value): %s", a)
		}
		switch strings.ToLower(k) {
		case "dangling":
			switch strings.ToLower(v) {
			case "true", "1":
				t := true
				f.dangling = &t
			case "false", "0":
				t := false
				f.dangling = &t
			default:
				return nil, usagef("invalid filter 'dangling=%s': use true or false", v)
			}
		case "reference":
			if _, err := path.Match(v, ""); err != nil {
				return nil, usagef("invalid filter 'reference=%s': %v", v, err)
			}
			f.refs = append(f.refs, v)
		case "label":
			f.labels = append(f.labels, v)
		case "before", "since":
			img, err := store.Get(ctx, v)
			if err != nil {
				return nil, err
			}
			cfg, err := store.Config(ctx, img)
			if err != nil {
				return nil, err
			}
			t := img.Created
			if cfg.Created != nil {
				t = *cfg.Created
			}
			if k == "before" {
				f.before = &t
			} else {
				f.since = &t
			}
		case "until":
			t, err := parseTimestamp(v, time.Now())
			if err != nil {
				return nil, usagef("invalid filter 'until=%s': %v", v, err)
			}
			f.until = &t
		default:
			return nil, usagef("invalid filter '%s'", k)
		}
	}
	return f, nil
}

func (f *imageFilters) match(r imageRow) bool {
	if f.dangling != nil && r.img.Dangling() != *f.dangling {
		return false
	}
	if len(f.refs) > 0 {
		ok := false
		for _, pat := range f.refs {
			if refMatch(pat, r.Repository, r.Tag) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.before != nil && !r.created.Before(*f.before) || f.since != nil && !r.created.After(*f.since) ||
		f.until != nil && !r.created.Before(*f.until) {
		return false
	}
	for _, l := range f.labels {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := r.cfg.Config.Labels[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}

// refMatch matches a reference filter pattern as docker does: against
// "repo:tag" when the pattern has a tag, else against the repository
// (familiar or full).
func refMatch(pat, repo, tag string) bool {
	if repo == "<none>" {
		return false
	}
	full := repo
	if r, err := reference.Parse(repo); err == nil {
		full = r.Repository()
	}
	if strings.LastIndex(pat, ":") > strings.LastIndex(pat, "/") {
		for _, cand := range []string{repo + ":" + tag, full + ":" + tag} {
			if ok, _ := path.Match(pat, cand); ok {
				return true
			}
		}
		return false
	}
	for _, cand := range []string{repo, full} {
		if ok, _ := path.Match(pat, cand); ok {
			return true
		}
	}
	return false
}

// parseTimestamp parses docker's filter and --since/--until times: RFC
// 3339 (with or without zone), a date, Unix seconds (with fraction), or a
// duration before now ("10m", "24h").
func parseTimestamp(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	if secs, frac, _ := strings.Cut(v, "."); secs != "" && strings.Trim(secs, "0123456789") == "" && strings.Trim(frac, "0123456789") == "" && len(frac) <= 9 {
		sec, err := strconv.ParseInt(secs, 10, 64)
		if err == nil {
			nsec, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			return time.Unix(sec, nsec), nil
		}
	}
	return time.Time{}, errors.New("not a timestamp (RFC 3339, Unix seconds) or a duration")
}
