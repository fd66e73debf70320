package image

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// metaVersion is the on-disk format of images.db. A newer version is
// refused; older ones are migrated by openMetaDB.
const metaVersion = 1

var (
	bucketMeta   = []byte("meta")
	bucketImages = []byte("images") // image ID -> JSON Image
	bucketNames  = []byte("names")  // reference -> image ID
	keyVersion   = []byte("version")
)

// metaDB is the image records database. bbolt holds an exclusive flock for
// as long as a read-write handle is open, and berth is daemonless, so the
// file is opened for each transaction and closed right after: concurrent
// berth processes queue on the lock for microseconds rather than for the
// length of a pull.
type metaDB struct {
	path string
}

func openMetaDB(path string) (*metaDB, error) {
	m := &metaDB{path: path}
	err := m.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketImages, bucketNames} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		v := meta.Get(keyVersion)
		if v == nil {
			return meta.Put(keyVersion, []byte(strconv.Itoa(metaVersion)))
		}
		n, err := strconv.Atoi(string(v))
		if err != nil || n > metaVersion {
			return fmt.Errorf("%s has format version %q; this berth reads up to %d: upgrade berth", path, v, metaVersion)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metaDB) open(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(m.path, 0o600, &bolt.Options{Timeout: 30 * time.Second, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", m.path, err)
	}
	return db, nil
}

func (m *metaDB) update(fn func(*bolt.Tx) error) error {
	db, err := m.open(false)
	if err != nil {
		return err
	}
	err = db.Update(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

func (m *metaDB) view(fn func(*bolt.Tx) error) error {
	db, err := m.open(true)
	if err != nil {
		return err
	}
	err = db.View(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

func getImage(tx *bolt.Tx, id digest.Digest) (*Image, error) {
	v := tx.Bucket(bucketImages).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var img Image
	if err := json.Unmarshal(v, &img); err != nil {
		return nil, fmt.Errorf("image record %s: %w", id, err)
	}
	return &img, nil
}

func putImage(tx *bolt.Tx, img *Image) error {
	sort.Slice(img.Names, func(a, b int) bool { return img.Names[a].Ref < img.Names[b].Ref })
	sort.Strings(img.RepoDigests)
	v, err := json.Marshal(img)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketImages).Put([]byte(img.ID), v)
}

func allImages(tx *bolt.Tx) ([]*Image, error) {
	var out []*Image
	err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		var img Image
		if err := json.Unmarshal(v, &img); err != nil {
			return fmt.Errorf("image record %s: %w", k, err)
		}
		out = append(out, &img)
		return nil
	})
	return out, err
}

func nameTarget(tx *bolt.Tx, ref string) digest.Digest {
	return digest.Digest(tx.Bucket(bucketNames).Get([]byte(ref)))
}

// unname removes ref from whichever image holds it. The image stays, now
// possibly dangling.
func unname(tx *bolt.Tx, ref string) error {
	id := nameTarget(tx, ref)
	if id == "" {
		return nil
	}
	if err := tx.Bucket(bucketNames).Delete([]byte(ref)); err != nil {
		return err
	}
	img, err := getImage(tx, id)
	if err != nil || img == nil {
		return err
	}
	kept := img.Names[:0]
	for _, n := range img.Names {
		if n.Ref != ref {
			kept = append(kept, n)
		}
	}
	img.Names = kept
	return putImage(tx, img)
}

// setName points ref at img (which the caller then stores).
func setName(tx *bolt.Tx, img *Image, n Name, now time.Time) error {
	if cur := nameTarget(tx, n.Ref); cur != "" && cur != img.ID {
		if err := unname(tx, n.Ref); err != nil {
			return err
		}
	}
	replaced := false
	for i := range img.Names {
		if img.Names[i].Ref == n.Ref {
			img.Names[i] = n
			replaced = true
		}
	}
	if !replaced {
		img.Names = append(img.Names, n)
	}
	img.LastTagTime = now
	return tx.Bucket(bucketNames).Put([]byte(n.Ref), []byte(img.ID))
}

// deleteImage removes the record and its names.
func deleteImage(tx *bolt.Tx, img *Image) error {
	for _, n := range img.Names {
		if err := tx.Bucket(bucketNames).Delete([]byte(n.Ref)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketImages).Delete([]byte(img.ID))
}
