package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-engine/berth/internal/testimage"
)

// cli runs berth with a private root, config and credentials file.
type cli struct {
	t    *testing.T
	root string
	conf string
	auth string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CLI image tests need root")
		}
		t.Skip("needs root")
	}
	dir := t.TempDir()
	c := &cli{t: t, root: filepath.Join(dir, "root"), conf: filepath.Join(dir, "berth.toml"), auth: filepath.Join(dir, "auth.json")}
	if err := os.WriteFile(c.conf, []byte("version = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// run returns stdout, stderr and the exit status.
func (c *cli) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	all := append([]string{"--root", c.root, "--config", c.conf, "--authfile", c.auth}, args...)
	code := run(all, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func pushTestImage(t *testing.T, reg *testimage.Registry, repo, tag string) *testimage.Image {
	t.Helper()
	img := testimage.Build(testimage.Spec{
		Cmd:    []string{"/bin/sh"},
		Env:    []string{"PATH=/bin"},
		Labels: map[string]string{"team": "infra"},
		Layers: []testimage.Layer{
			{Files: []testimage.File{{Name: "bin/", Type: tar.TypeDir}, {Name: "bin/sh", Body: "#!", Mode: 0o755}}},
			{Compression: "zstd", Files: []testimage.File{{Name: "etc/motd", Body: "hello\n"}}},
		},
	})
	if err := reg.PushImage(context.Background(), repo, tag, img); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCLIPullImagesRmi(t *testing.T) {
	reg := testimage.StartRegistry(t)
	img := pushTestImage(t, reg, "team/app", "latest")
	c := newCLI(t)
	name := reg.Host + "/team/app"

	out := c.ok("pull", name)
	for _, want := range []string{
		"Using default tag: latest\n",
		"latest: Pulling from team/app\n",
		"Digest: " + img.Digest.String() + "\n",
		"Status: Downloaded newer image for " + name + ":latest\n",
		name + ":latest\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	out = c.ok("pull", name+":latest")
	if !strings.Contains(out, "Status: Image is up to date for "+name+":latest") || strings.Contains(out, "Using default tag") {
		t.Errorf("second pull output:\n%s", out)
	}
	if out := c.ok("pull", "-q", name); out != name+":latest\n" {
		t.Errorf("pull -q printed %q", out)
	}

	short := img.ConfigDigest.Encoded()[:12]
	out = c.ok("images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$`).MatchString(lines[0]) {
		t.Fatalf("images:\n%s", out)
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `\s+latest\s+` + short + `\s+\S.* ago\s+\d+B$`).MatchString(lines[1]) {
		t.Errorf("images row %q", lines[1])
	}
	if out := c.ok("images", "-q"); out != short+"\n" {
		t.Errorf("images -q = %q", out)
	}
	out = c.ok("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")
	if out != name+" latest "+img.Digest.String()+"\n" {
		t.Errorf("images --format = %q", out)
	}
	out = c.ok("images", "--format", "json")
	var row map[string]any
	if err := json.Unmarshal([]byte(out), &row); err != nil || row["ID"] != short || row["Repository"] != name {
		t.Errorf("images --format json = %q (%v)", out, err)
	}

	c.ok("tag", name, "mine:1")
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{"reference=mine", 1},
		{"reference=mine:*", 1},
		{"reference=nomatch", 0},
		{"label=team=infra", 2},
		{"label=team=other", 0},
		{"dangling=true", 0},
		{"dangling=false", 2},
		{"until=1h", 2},
	} {
		out := strings.TrimSpace(c.ok("images", "--filter", tc.filter, "--format", "{{.Repository}}:{{.Tag}}"))
		n := 0
		if out != "" {
			n = len(strings.Split(out, "\n"))
		}
		if n != tc.want {
			t.Errorf("--filter %s: %d rows, want %d:\n%s", tc.filter, n, tc.want, out)
		}
	}
	if _, errs, code := c.run("", "images", "--filter", "bogus=1"); code != 125 || !strings.Contains(errs, "invalid filter") {
		t.Errorf("bad filter: exit %d, %q", code, errs)
	}

	// history and inspect
	out = c.ok("history", "mine:1")
	if !strings.HasPrefix(out, "IMAGE") || !strings.Contains(out, short) || !strings.Contains(out, "<missing>") {
		t.Errorf("history:\n%s", out)
	}
	out = c.ok("image", "inspect", "mine:1")
	var insp []map[string]any
	if err := json.Unmarshal([]byte(out), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	if insp[0]["Id"] != img.ConfigDigest.String() || insp[0]["Os"] != "linux" {
		t.Errorf("inspect = %v", insp[0])
	}
	cfg := insp[0]["Config"].(map[string]any)
	if cfg["Cmd"].([]any)[0] != "/bin/sh" {
		t.Errorf("inspect Config %v", cfg)
	}
	if out := c.ok("image", "inspect", "-f", "{{.Config.Labels.team}} {{len .RootFS.Layers}}", "mine:1"); out != "infra 2\n" {
		t.Errorf("inspect -f = %q", out)
	}
	if _, errs, code := c.run("", "image", "inspect", "nosuch"); code != 1 || !strings.Contains(errs, "No such image") && !strings.Contains(errs, "no such image") {
		t.Errorf("inspect nosuch: exit %d %q", code, errs)
	}

	out = c.ok("system", "df")
	if !regexp.MustCompile(`(?m)^Images\s+1\s+0\s+\S+\s+\S+ \(100%\)$`).MatchString(out) {
		t.Errorf("system df:\n%s", out)
	}

	// rmi: untag, then delete with reclaimed space.
	if out := c.ok("rmi", "mine:1"); out != "Untagged: mine:1\n" {
		t.Errorf("rmi mine:1 = %q", out)
	}
	out = c.ok("rmi", name)
	if !strings.Contains(out, "Untagged: "+name+":latest\n") || !strings.Contains(out, "Deleted: "+img.ConfigDigest.String()) || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("rmi output:\n%s", out)
	}
	if _, errs, code := c.run("", "rmi", name); code != 1 || !strings.Contains(strings.ToLower(errs), "no such image") {
		t.Errorf("rmi again: exit %d %q", code, errs)
	}
	if out := c.ok("images", "-q"); out != "" {
		t.Errorf("images after rmi: %q", out)
	}
}

func TestCLISaveLoadImport(t *testing.T) {
	reg := testimage.StartRegistry(t)
	img := pushTestImage(t, reg, "app", "1")
	c := newCLI(t)
	name := reg.Host + "/app:1"
	c.ok("pull", "-q", name)
	dir := t.TempDir()
	for _, f := range []string{"docker-archive", "oci-archive"} {
		file := filepath.Join(dir, f+".tar")
		c.ok("save", "--format", f, "-o", file, name)
		c2 := newCLI(t)
		out := c2.ok("load", "-q", "-i", file)
		if out != "Loaded image: "+name+"\n" {
			t.Errorf("%s: load printed %q", f, out)
		}
		if got := c2.ok("images", "-q", "--no-trunc"); got != img.ConfigDigest.String()+"\n" {
			t.Errorf("%s: loaded %q", f, got)
		}
	}
	if _, errs, code := c.run("", "save", "--format", "zip", "-o", filepath.Join(dir, "x"), name); code != 125 || errs == "" {
		t.Errorf("save --format zip: exit %d %q", code, errs)
	}
	if _, errs, code := c.run("", "save", "-o", filepath.Join(dir, "y.tar"), "nosuch"); code != 1 || errs == "" {
		t.Errorf("save nosuch: exit %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "y.tar")); !os.IsNotExist(err) {
		t.Errorf("a failed save left its output file: %v", err)
	}

	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	out, errs, code := c.run(tb.String(), "import", "-c", "CMD [\"/f\"]", "-m", "hand made", "-", "imp:1")
	if code != 0 || !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(out) {
		t.Fatalf("import: exit %d %q %q", code, out, errs)
	}
	if got := c.ok("image", "inspect", "-f", "{{.Config.Cmd}} {{.Comment}}", "imp:1"); got != "[/f] \n" {
		t.Errorf("imported inspect = %q", got)
	}
	if got := c.ok("history", "--format", "{{.Comment}}", "imp:1"); got != "hand made\n" {
		t.Errorf("imported history comment = %q", got)
	}
	if _, errs, code := c.run(tb.String(), "import", "-c", "FROM x", "-"); code != 1 || !strings.Contains(errs, "FROM") {
		t.Errorf("import with FROM change: exit %d %q", code, errs)
	}
}

func TestCLILoginPushAuth(t *testing.T) {
	reg := testimage.StartRegistry(t)
	pushTestImage(t, reg, "src", "1")
	reg.Wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "alice" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	}
	c := newCLI(t)
	src := reg.Host + "/src:1"
	if _, errs, code := c.run("", "pull", src); code != 1 || !strings.Contains(errs, "berth login") {
		t.Errorf("pull without login: exit %d %q", code, errs)
	}
	if _, errs, code := c.run("wrong\n", "login", "-u", "alice", "--password-stdin", reg.Host); code != 1 || errs == "" {
		t.Errorf("login with a wrong password: exit %d %q", code, errs)
	}
	if out := c.ok("login", "-u", "alice", "-p", "s3cret", reg.Host); out != "Login Succeeded\n" {
		t.Errorf("login printed %q", out)
	}
	data, err := os.ReadFile(c.auth)
	if err != nil || !strings.Contains(string(data), reg.Host) {
		t.Fatalf("auth file %q, %v", data, err)
	}
	c.ok("pull", "-q", src)
	dst := reg.Host + "/dst:2"
	c.ok("tag", src, dst)
	out := c.ok("push", dst)
	if !strings.Contains(out, "The push refers to repository ["+reg.Host+"/dst]") || !regexp.MustCompile(`2: digest: sha256:[0-9a-f]{64} size: \d+`).MatchString(out) {
		t.Errorf("push output:\n%s", out)
	}
	if out := c.ok("logout", reg.Host); out != "Removing login credentials for "+reg.Host+"\n" {
		t.Errorf("logout printed %q", out)
	}
	if out := c.ok("logout", reg.Host); out != "Not logged in to "+reg.Host+"\n" {
		t.Errorf("second logout printed %q", out)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{
		{"pull"},
		{"pull", "a", "b"},
		{"tag", "a"},
		{"images", "--bogus"},
		{"pull", "--platform", "nope/", "x"},
		{"pull", "--all-tags", "x:1"},
	} {
		if _, errs, code := c.run("", args...); code != 125 || errs == "" {
			t.Errorf("berth %v: exit %d, stderr %q; want 125", args, code, errs)
		}
	}
	if _, errs, code := c.run("", "pull", "team/UPPER"); code != 1 || !strings.Contains(errs, "invalid reference format") {
		t.Errorf("pull team/UPPER: exit %d %q", code, errs)
	}
}

// TestCLITokenAuth runs login, push and pull against a registry that uses
// the Docker token flow: a 401 names a realm, berth fetches a bearer token
// there with the stored credentials and retries.
func TestCLITokenAuth(t *testing.T) {
	reg := testimage.StartRegistry(t)
	pushTestImage(t, reg, "tok/src", "1")
	var tokens atomic.Int32
	reg.Wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != "bob" || p != "pw" || r.URL.Query().Get("service") != "test-registry" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"token":"tok-bob","expires_in":300}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok-bob" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+reg.Host+`/token",service="test-registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	}
	c := newCLI(t)
	src := reg.Host + "/tok/src:1"
	if _, errs, code := c.run("", "pull", src); code != 1 || !strings.Contains(errs, "berth login") {
		t.Errorf("pull without login: exit %d %q", code, errs)
	}
	if _, errs, code := c.run("nope\n", "login", "-u", "bob", "--password-stdin", reg.Host); code != 1 || !strings.Contains(errs, "incorrect username or password") {
		t.Errorf("login with a wrong password: exit %d %q", code, errs)
	}
	if out, errs, code := c.run("pw\n", "login", "-u", "bob", "--password-stdin", reg.Host); code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("login: exit %d %q %q", code, out, errs)
	}
	c.ok("pull", "-q", src)
	c.ok("tag", src, reg.Host+"/tok/dst:1")
	c.ok("push", "-q", reg.Host+"/tok/dst:1")
	if tokens.Load() == 0 {
		t.Error("no token was issued")
	}
}
