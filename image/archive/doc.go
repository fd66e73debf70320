// Package archive writes and reads image tarballs, the files of
// `berth save` and `berth load`, in the two formats users exchange.
//
// # docker-archive
//
// What `docker save` writes and `docker load` and `podman load` read. Its
// entry point is manifest.json, one entry per image:
//
//	[{"Config": "blobs/sha256/<config>", "RepoTags": ["busybox:latest"],
//	  "Layers": ["blobs/sha256/<diff id>", ...]}]
//
// Every layer file is an uncompressed tar whose digest is the matching
// rootfs.diff_ids entry of the config. Save writes the layout of docker 25
// and later: an OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>)
// whose manifests are Docker schema 2 manifests of those uncompressed
// layers, plus manifest.json and the legacy repositories file naming the
// same blobs. Registry layers are usually gzip or zstd, so Save decompresses
// each one (twice: once to learn the size the tar header needs, once to
// write it; each pass verifies the diff ID) and writes a manifest of its own.
// The config is written unchanged, so the image ID (the config digest) is
// the same on both sides. Images with the same config are one image: their
// tags are merged into one manifest.json entry.
//
// Load reads the same layout and the older ones (`docker save` before 25,
// `podman save`: <id>/layer.tar or <diff id>.tar layers, <hex>.json configs,
// layers linked to one another by symlinks), including layers that are
// compressed (docker load accepts them): a layer file becomes a blob with
// its bytes as they are, and the manifest Load builds for the image gives it
// the media type of its compression. That manifest is a Docker schema 2
// manifest, or an OCI manifest when a layer is zstd (schema 2 has no zstd
// type), and it is the loaded image's target, so the image can be pushed.
// When an archive has both manifest.json and index.json, manifest.json is
// what Load reads (as docker does); for an archive written by Save both
// describe the same manifest, byte for byte.
//
// # oci-archive
//
// An OCI image layout in a tar, with the blobs as they are stored
// (compressed layers stay compressed). Each name of an image is one
// index.json entry carrying the annotations org.opencontainers.image.ref.name
// (the tag) and io.containerd.image.name (the full name, as containerd and
// podman read it); an unnamed image is one entry without annotations. Load
// names an entry by io.containerd.image.name, else by
// org.opencontainers.image.ref.name when that is a full reference (a bare
// tag names no repository), and merges the entries of one target into one
// image. The target may be an index: Save writes the index and those of its manifests
// (with their configs and layers) that are in the store, and skips the
// others, which a single-platform pull never fetched. Load accepts such a
// partial index likewise, but an index none of whose manifests is present,
// and a present manifest with a missing config or layer, are errors.
//
// # Loading hostile archives
//
// Load reads its input once, in whatever order the entries come. Files named
// blobs/<alg>/<hex> go straight into the content store, which verifies the
// digest (a blob the store has already is verified against the archive's
// bytes all the same); metadata files (*.json, oci-layout, repositories,
// VERSION) are spooled to a temporary directory, at most 16 MiB each; any
// other file (a legacy layer.tar) is stored as a blob under the digest of
// its bytes. Only then are the documents read. Absolute paths, ".."
// components, duplicate entries, links leaving the archive or looping,
// sparse files and device files, documents naming missing files, layers
// that do not match the config's diff IDs in number or digest, and blobs
// that do not match their names make Load fail with an error wrapping
// ErrInvalidArchive, and no image is returned. Blobs ingested before the
// failure stay in the store: they are verified and unreferenced, so they are
// harmless, and garbage collection removes them. An oci-archive's image is
// complete when every blob it needs is in the store afterwards, whether the
// archive brought it or the store had it.
package archive
