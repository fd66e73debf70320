package image

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/berth-engine/berth/content"
	"github.com/berth-engine/berth/image/manifest"
	"github.com/berth-engine/berth/image/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

var hexPrefix = regexp.MustCompile(`^(sha256:)?[a-f0-9]{1,64}$`)

// List returns every local image, newest record first.
func (s *Store) List(ctx context.Context) ([]*Image, error) {
	var out []*Image
	err := s.db.view(func(tx *bolt.Tx) error {
		var err error
		out, err = allImages(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Created.After(out[b].Created) })
	return out, nil
}

// Get finds the local image a user's reference names, by docker's rules: a
// name (busybox, busybox:1.36, registry:5000/x@sha256:...), a full image ID
// (64 hex or sha256:<hex>) or a unique ID prefix.
func (s *Store) Get(ctx context.Context, ref string) (*Image, error) {
	var img *Image
	err := s.db.view(func(tx *bolt.Tx) error {
		var err error
		img, err = lookup(tx, ref, s.platform)
		return err
	})
	return img, err
}

func lookup(tx *bolt.Tx, s string, platform manifest.Platform) (*Image, error) {
	r, perr := reference.Parse(s)
	if perr == nil && r.IsID() {
		img, err := getImage(tx, r.ID())
		if err != nil {
			return nil, err
		}
		if img == nil {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, s)
		}
		return img, nil
	}
	if perr == nil {
		if r.Digest() != "" {
			if img, err := byRepoDigest(tx, r, platform); img != nil || err != nil {
				return img, err
			}
		} else if id := nameTarget(tx, r.String()); id != "" {
			return getImage(tx, id)
		}
	}
	if hexPrefix.MatchString(s) {
		return byIDPrefix(tx, strings.TrimPrefix(s, "sha256:"), s)
	}
	if perr != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, perr)
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, s)
}

// byRepoDigest finds the image pulled or pushed as repo@digest. Several
// platforms of one multi-platform digest may be local: the store's own
// platform is preferred, then the first.
func byRepoDigest(tx *bolt.Tx, r reference.Ref, platform manifest.Platform) (*Image, error) {
	imgs, err := allImages(tx)
	if err != nil {
		return nil, err
	}
	want := r.Repository() + "@" + r.Digest().String()
	var found []*Image
	for _, img := range imgs {
		match := contains(img.RepoDigests, want) || img.Manifest.Digest == r.Digest()
		for _, n := range img.Names {
			if n.Target.Digest == r.Digest() && refRepo(n.Ref) == r.Repository() {
				match = true
			}
		}
		if match {
			found = append(found, img)
		}
	}
	for _, img := range found {
		if p := img.Manifest.Platform; p != nil && platform.Matches(manifest.FromOCI(p)) {
			return img, nil
		}
	}
	if len(found) > 0 {
		return found[0], nil
	}
	return nil, nil
}

func byIDPrefix(tx *bolt.Tx, prefix, orig string) (*Image, error) {
	var found *Image
	c := tx.Bucket(bucketImages).Cursor()
	p := []byte("sha256:" + prefix)
	for k, v := c.Seek(p); k != nil && strings.HasPrefix(string(k), string(p)); k, v = c.Next() {
		if found != nil {
			return nil, fmt.Errorf("%w: %s matches several images", ErrAmbiguous, orig)
		}
		var img Image
		if err := json.Unmarshal(v, &img); err != nil {
			return nil, err
		}
		found = &img
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, orig)
	}
	return found, nil
}

// refRepo returns the repository of a full reference string.
func refRepo(ref string) string {
	r, err := reference.Parse(ref)
	if err != nil {
		return ref
	}
	return r.Repository()
}

// Tag points the name target (normalised; a tag is added when missing) at
// the image src names.
func (s *Store) Tag(ctx context.Context, src, target string) error {
	r, err := reference.Parse(target)
	if err != nil {
		return fmt.Errorf("tag %s: %w: %w", target, ErrInvalid, err)
	}
	if r.IsID() || r.Digest() != "" {
		return fmt.Errorf("tag %s: %w: refusing to create a tag with a digest reference", target, ErrInvalid)
	}
	return s.db.update(func(tx *bolt.Tx) error {
		img, err := lookup(tx, src, s.platform)
		if err != nil {
			return err
		}
		n := Name{Ref: r.String(), Target: img.Manifest}
		// Keep the multi-platform target when the source name has one.
		for _, cur := range img.Names {
			if refMatches(cur.Ref, src) {
				n.Target = cur.Target
			}
		}
		if err := setName(tx, img, n, time.Now().UTC()); err != nil {
			return err
		}
		return putImage(tx, img)
	})
}

func refMatches(full, user string) bool {
	r, err := reference.Parse(user)
	return err == nil && !r.IsID() && r.String() == full
}

// familiar returns docker's short form of a full reference.
func familiar(ref string) string {
	r, err := reference.Parse(ref)
	if err != nil {
		return ref
	}
	return r.Familiar()
}

// RemoveResult reports what Remove did, in docker's terms.
type RemoveResult struct {
	Untagged []string        // familiar references removed
	Deleted  []digest.Digest // image IDs deleted
}

// Remove removes a name or an image with docker's rules. For a name: the
// name is removed, and the image too when that was its last name. For an
// ID: the image and all its names, which needs force when the names span
// several repositories. An image that containers use is refused unless
// force is set, and even then only untagged while a container runs it.
// Blobs and snapshots are reclaimed by a GC that the caller runs after.
func (s *Store) Remove(ctx context.Context, ref string, force bool) (*RemoveResult, error) {
	usage, err := s.usage(ctx)
	if err != nil {
		return nil, err
	}
	res := &RemoveResult{}
	err = s.db.update(func(tx *bolt.Tx) error {
		img, err := lookup(tx, ref, s.platform)
		if err != nil {
			return err
		}
		u := usage[img.ID]
		byName := ""
		if r, perr := reference.Parse(ref); perr == nil && !r.IsID() && r.Digest() == "" && nameTarget(tx, r.String()) == img.ID {
			byName = r.String()
		}
		if byName != "" && len(img.Names) > 1 {
			res.Untagged = append(res.Untagged, familiar(byName))
			return unname(tx, byName)
		}
		if byName == "" && len(img.Names) > 1 && !force && !oneRepo(img) {
			return fmt.Errorf("%w: unable to delete %s (must be forced) - image is referenced in multiple repositories", ErrConflict, short(img.ID))
		}
		if u.Running > 0 && (byName == "" || force) {
			if byName != "" && force {
				res.Untagged = append(res.Untagged, familiar(byName))
				return unname(tx, byName)
			}
			return fmt.Errorf("%w: unable to delete %s (cannot be forced) - image is being used by a running container", ErrConflict, short(img.ID))
		}
		if u.Containers > 0 {
			if !force {
				if byName != "" {
					return fmt.Errorf("%w: unable to remove repository reference %q (must force) - a container is using its referenced image %s", ErrConflict, ref, short(img.ID))
				}
				return fmt.Errorf("%w: unable to delete %s (must be forced) - image is being used by a stopped container", ErrConflict, short(img.ID))
			}
			// Forced: untag, keep the image for the container.
			for _, n := range img.Names {
				res.Untagged = append(res.Untagged, familiar(n.Ref))
			}
			for _, n := range append([]Name(nil), img.Names...) {
				if err := unname(tx, n.Ref); err != nil {
					return err
				}
			}
			return nil
		}
		for _, n := range img.Names {
			res.Untagged = append(res.Untagged, familiar(n.Ref))
		}
		for _, rd := range img.RepoDigests {
			res.Untagged = append(res.Untagged, familiar(rd))
		}
		res.Deleted = append(res.Deleted, img.ID)
		return deleteImage(tx, img)
	})
	if err != nil {
		return nil, fmt.Errorf("remove %s: %w", ref, err)
	}
	return res, nil
}

func oneRepo(img *Image) bool {
	for _, n := range img.Names[1:] {
		if refRepo(n.Ref) != refRepo(img.Names[0].Ref) {
			return false
		}
	}
	return true
}

func (s *Store) usage(ctx context.Context) (map[digest.Digest]Usage, error) {
	if s.inUse == nil {
		return nil, nil
	}
	u, err := s.inUse(ctx)
	if err != nil {
		return nil, fmt.Errorf("find images used by containers: %w", err)
	}
	return u, nil
}

// short returns the 12-hex short form of an image ID.
func short(d digest.Digest) string {
	h := d.Encoded()
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// Config reads the image's configuration.
func (s *Store) Config(ctx context.Context, img *Image) (*ConfigFile, error) {
	data, err := content.ReadBlob(ctx, s.content, img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: read config: %w", short(img.ID), err)
	}
	cfg, err := decodeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", short(img.ID), err)
	}
	return cfg, nil
}

// ReadManifest reads and decodes the image's platform manifest.
func (s *Store) ReadManifest(ctx context.Context, img *Image) (*manifest.Manifest, error) {
	data, err := content.ReadBlob(ctx, s.content, img.Manifest.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: read manifest: %w", short(img.ID), err)
	}
	d, err := manifest.Decode(img.Manifest.MediaType, data)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", short(img.ID), err)
	}
	if d.Manifest == nil {
		return nil, fmt.Errorf("image %s: %w: %s is not an image manifest", short(img.ID), ErrInvalid, img.Manifest.MediaType)
	}
	return d.Manifest, nil
}

// record stores an image (merging with an existing record of the same ID)
// and points name (if any) at it with target.
func (s *Store) record(ctx context.Context, img Image, name string, target ocispec.Descriptor, repoDigest string) (*Image, error) {
	var out *Image
	err := s.db.update(func(tx *bolt.Tx) error {
		cur, err := getImage(tx, img.ID)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		if cur == nil {
			cur = &img
			cur.Names = nil
			cur.RepoDigests = nil
			cur.Created = now
		} else {
			cur.Manifest = img.Manifest
			if img.Size > 0 {
				cur.Size = img.Size
			}
		}
		if repoDigest != "" && !contains(cur.RepoDigests, repoDigest) {
			cur.RepoDigests = append(cur.RepoDigests, repoDigest)
		}
		if name != "" {
			if err := setName(tx, cur, Name{Ref: name, Target: target}, now); err != nil {
				return err
			}
		}
		out = cur
		return putImage(tx, cur)
	})
	if err != nil {
		return nil, fmt.Errorf("record image %s: %w", short(img.ID), err)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
