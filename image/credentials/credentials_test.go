package credentials

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// The test binary doubles as a fake credential helper: tests link
// docker-credential-fake to it in a directory put first on $PATH, and
// TestMain runs fakeHelper when invoked under that name.
func TestMain(m *testing.M) {
	if strings.HasPrefix(filepath.Base(os.Args[0]), HelperPrefix) {
		os.Exit(fakeHelper())
	}
	os.Exit(m.Run())
}

// Environment of the fake helper.
const (
	envHelperState = "BERTH_FAKE_HELPER_STATE" // directory holding store.json and calls.log
	envHelperFail  = "BERTH_FAKE_HELPER_FAIL"  // when set: print it and exit 1
)

// fakeHelper implements the credential helper protocol over a JSON file
// (server URL → message) and logs every call as "action stdin" lines.
func fakeHelper() int {
	state := os.Getenv(envHelperState)
	storePath := filepath.Join(state, "store.json")
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	action := ""
	if len(os.Args) > 1 {
		action = os.Args[1]
	}
	logf, err := os.OpenFile(filepath.Join(state, "calls.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Fprintf(logf, "%s %s\n", action, in)
	logf.Close()
	if msg := os.Getenv(envHelperFail); msg != "" {
		fmt.Println(msg)
		return 1
	}
	store := map[string]helperMessage{}
	if data, err := os.ReadFile(storePath); err == nil {
		if err := json.Unmarshal(data, &store); err != nil {
			fmt.Println(err)
			return 1
		}
	}
	notFound := func() int {
		fmt.Println("credentials not found in native keychain")
		return 1
	}
	switch action {
	case "get":
		msg, ok := store[string(in)]
		if !ok {
			return notFound()
		}
		out, _ := json.Marshal(msg)
		fmt.Println(string(out))
		return 0
	case "store":
		var msg helperMessage
		if err := json.Unmarshal(in, &msg); err != nil {
			fmt.Println(err)
			return 1
		}
		store[msg.ServerURL] = msg
	case "erase":
		if _, ok := store[string(in)]; !ok {
			return notFound()
		}
		delete(store, string(in))
	default:
		fmt.Println("unknown action", action)
		return 1
	}
	data, _ := json.Marshal(store)
	if err := os.WriteFile(storePath, data, 0o600); err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

// fakeHelperEnv installs docker-credential-fake on $PATH and returns its
// state directory.
func fakeHelperEnv(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(bin, HelperPrefix+"fake")); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv(envHelperState, state)
	// A race-enabled binary sleeps a second at a successful exit, waiting
	// for races to report: not needed by a short-lived helper.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return state
}

// helperStoreContent returns what the fake helper holds.
func helperStoreContent(t *testing.T, state string) map[string]helperMessage {
	t.Helper()
	store := map[string]helperMessage{}
	data, err := os.ReadFile(filepath.Join(state, "store.json"))
	if errors.Is(err, os.ErrNotExist) {
		return store
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &store); err != nil {
		t.Fatal(err)
	}
	return store
}

func helperCalls(t *testing.T, state string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(state, "calls.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	return v
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestServerKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"docker.io", DockerHubServerKey},
		{"index.docker.io", DockerHubServerKey},
		{"registry-1.docker.io", DockerHubServerKey},
		{"https://index.docker.io/v1/", DockerHubServerKey},
		{"registry.example.com", "registry.example.com"},
		{"Registry.Example.com:5000", "registry.example.com:5000"},
		{"https://registry.example.com", "registry.example.com"},
		{"http://localhost:5000/v1/", "localhost:5000"},
		{"", ""},
	} {
		if got := ServerKey(tc.in); got != tc.want {
			t.Errorf("ServerKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	if p, err := DefaultPath(); err != nil || p != filepath.Join(dir, "config.json") {
		t.Fatalf("with DOCKER_CONFIG: %q, %v", p, err)
	}
	home := t.TempDir()
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("HOME", home)
	if p, err := DefaultPath(); err != nil || p != filepath.Join(home, ".docker", "config.json") {
		t.Fatalf("from HOME: %q, %v", p, err)
	}
	s, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != filepath.Join(home, ".docker", "config.json") {
		t.Fatalf("Open(\"\").Path() = %q", s.Path())
	}
}

func TestGetFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, path, `{
		"auths": {
			"https://index.docker.io/v1/": {"auth": "`+b64("hubuser:hubpass")+`"},
			"registry.example.com": {"auth": "`+b64("alice:pa:ss")+`", "identitytoken": "refresh"},
			"https://old.example.com": {"auth": "`+b64("bob:secret")+`"},
			"http://plain.example.com:5000": {"auth": "`+b64("carol:pw")+`"},
			"legacy.example.com": {"username": "dave", "password": "pw2"},
			"empty.example.com": {}
		}
	}`)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		want Credential
	}{
		{"docker.io", Credential{Username: "hubuser", Secret: "hubpass"}},
		{"index.docker.io", Credential{Username: "hubuser", Secret: "hubpass"}},
		{"registry.example.com", Credential{Username: "alice", Secret: "pa:ss", IdentityToken: "refresh"}},
		{"old.example.com", Credential{Username: "bob", Secret: "secret"}},
		{"plain.example.com:5000", Credential{Username: "carol", Secret: "pw"}},
		{"legacy.example.com", Credential{Username: "dave", Secret: "pw2"}},
		{"empty.example.com", Credential{}},
		{"unknown.example.com", Credential{}},
		{"plain.example.com", Credential{}}, // the port is part of the key
	} {
		got, err := s.Get(context.Background(), tc.host)
		if err != nil {
			t.Errorf("Get(%q): %v", tc.host, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Get(%q) = %+v, want %+v", tc.host, got, tc.want)
		}
	}
}

func TestGetPrefersExactKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, path, `{"auths": {
		"https://r.example.com": {"auth": "`+b64("old:old")+`"},
		"r.example.com": {"auth": "`+b64("new:new")+`"}
	}}`)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), "r.example.com")
	if err != nil || got.Username != "new" {
		t.Fatalf("Get = %+v, %v; want the exact key's credentials", got, err)
	}
}

func TestMissingFileIsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nonexistent", "config.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), "docker.io")
	if err != nil || !got.IsZero() {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if err := s.Erase(context.Background(), "docker.io"); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("Erase = %v, want ErrNotLoggedIn", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for name, content := range map[string]string{
		"not json":          `{"auths": `,
		"auths not object":  `{"auths": []}`,
		"credsStore number": `{"credsStore": 1}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			writeConfig(t, path, content)
			if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open = %v, want an error naming the file", err)
			}
		})
	}
}

func TestCorruptAuthEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, path, `{"auths": {"r.example.com": {"auth": "%%%"}, "s.example.com": {"auth": "`+b64("nocolon")+`"}}}`)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"r.example.com", "s.example.com"} {
		if _, err := s.Get(context.Background(), host); err == nil {
			t.Errorf("Get(%q) of a corrupt entry succeeded", host)
		}
	}
}

func TestPutPreservesAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docker")
	path := filepath.Join(dir, "config.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Put creates the directory (0700) and the file (0600).
	if err := s.Put(ctx, "docker.io", Credential{Username: "u", Secret: "p"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}
	cfg := readJSON(t, path)
	want := map[string]any{"auths": map[string]any{DockerHubServerKey: map[string]any{"auth": b64("u:p")}}}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config = %v, want %v", cfg, want)
	}

	// Unknown fields, at the top level and in entries, survive a rewrite;
	// other forms of the same registry's key are replaced.
	writeConfig(t, path, `{
		"auths": {
			"https://r.example.com": {"auth": "`+b64("stale:stale")+`"},
			"other.example.com": {"auth": "`+b64("o:o")+`", "email": "o@example.com"},
			"r.example.com": {"auth": "`+b64("x:y")+`", "email": "me@example.com"}
		},
		"proxies": {"default": {"httpProxy": "http://proxy:3128"}},
		"detachKeys": "ctrl-e,e",
		"psFormat": "table {{.ID}}"
	}`)
	if err := s.Put(ctx, "r.example.com", Credential{Username: "alice", Secret: "s3", IdentityToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	cfg = readJSON(t, path)
	want = map[string]any{
		"auths": map[string]any{
			"other.example.com": map[string]any{"auth": b64("o:o"), "email": "o@example.com"},
			"r.example.com":     map[string]any{"auth": b64("alice:s3"), "identitytoken": "tok", "email": "me@example.com"},
		},
		"proxies":    map[string]any{"default": map[string]any{"httpProxy": "http://proxy:3128"}},
		"detachKeys": "ctrl-e,e",
		"psFormat":   "table {{.ID}}",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config = %v\nwant %v", cfg, want)
	}
	got, err := s.Get(ctx, "https://r.example.com")
	if err != nil || got != (Credential{Username: "alice", Secret: "s3", IdentityToken: "tok"}) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode after rewrite %v", st.Mode().Perm())
	}

	// Erase removes the entry and keeps the rest.
	if err := s.Erase(ctx, "r.example.com"); err != nil {
		t.Fatal(err)
	}
	cfg = readJSON(t, path)
	if _, ok := cfg["auths"].(map[string]any)["r.example.com"]; ok {
		t.Fatal("entry still present after Erase")
	}
	if cfg["detachKeys"] != "ctrl-e,e" {
		t.Fatal("unknown field lost by Erase")
	}
	if err := s.Erase(ctx, "r.example.com"); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("second Erase = %v, want ErrNotLoggedIn", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left in %s: %v", dir, entries)
	}
}

func TestPutThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "config.json")
	writeConfig(t, real, `{"auths": {}}`)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	s, err := Open(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), "r.example.com", Credential{Username: "u", Secret: "p"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", st, err)
	}
	if cfg := readJSON(t, real); cfg["auths"].(map[string]any)["r.example.com"] == nil {
		t.Fatalf("the link's target was not updated: %v", cfg)
	}
}

func TestConcurrentPuts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate Stores, as separate processes would have.
			s2, err := Open(path)
			if err != nil {
				errs <- err
				return
			}
			errs <- s2.Put(context.Background(), fmt.Sprintf("r%d.example.com", i), Credential{Username: "u", Secret: "p"})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		got, err := s.Get(context.Background(), fmt.Sprintf("r%d.example.com", i))
		if err != nil || got.Username != "u" {
			t.Errorf("r%d lost: %+v, %v", i, got, err)
		}
	}
}

func TestCredsStoreHelper(t *testing.T) {
	state := fakeHelperEnv(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, path, `{"credsStore": "fake", "auths": {}, "currentContext": "default"}`)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Nothing stored yet: the helper's "not found" is no error.
	got, err := s.Get(ctx, "docker.io")
	if err != nil || !got.IsZero() {
		t.Fatalf("Get before login = %+v, %v", got, err)
	}
	if err := s.Put(ctx, "docker.io", Credential{Username: "hub", Secret: "pw"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "r.example.com", Credential{IdentityToken: "refresh-token"}); err != nil {
		t.Fatal(err)
	}
	wantStore := map[string]helperMessage{
		DockerHubServerKey: {ServerURL: DockerHubServerKey, Username: "hub", Secret: "pw"},
		"r.example.com":    {ServerURL: "r.example.com", Username: "<token>", Secret: "refresh-token"},
	}
	if got := helperStoreContent(t, state); !reflect.DeepEqual(got, wantStore) {
		t.Fatalf("helper holds %v, want %v", got, wantStore)
	}
	// The file records the logins without secrets, as docker does.
	cfg := readJSON(t, path)
	wantCfg := map[string]any{
		"auths": map[string]any{
			DockerHubServerKey: map[string]any{},
			"r.example.com":    map[string]any{},
		},
		"credsStore":     "fake",
		"currentContext": "default",
	}
	if !reflect.DeepEqual(cfg, wantCfg) {
		t.Fatalf("config = %v, want %v", cfg, wantCfg)
	}
	if got, err := s.Get(ctx, "index.docker.io"); err != nil || got != (Credential{Username: "hub", Secret: "pw"}) {
		t.Fatalf("Get hub = %+v, %v", got, err)
	}
	if got, err := s.Get(ctx, "r.example.com"); err != nil || got != (Credential{IdentityToken: "refresh-token"}) {
		t.Fatalf("Get identity token = %+v, %v", got, err)
	}

	if err := s.Erase(ctx, "docker.io"); err != nil {
		t.Fatal(err)
	}
	if _, ok := helperStoreContent(t, state)[DockerHubServerKey]; ok {
		t.Fatal("helper still holds hub credentials after Erase")
	}
	if _, ok := readJSON(t, path)["auths"].(map[string]any)[DockerHubServerKey]; ok {
		t.Fatal("file still lists the hub login after Erase")
	}
	if err := s.Erase(ctx, "docker.io"); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("second Erase = %v, want ErrNotLoggedIn", err)
	}
	// The helper saw exactly the server URLs docker would pass.
	calls := helperCalls(t, state)
	if calls[0] != "get "+DockerHubServerKey {
		t.Fatalf("first helper call %q", calls[0])
	}
}

func TestCredHelpersTakePrecedence(t *testing.T) {
	state := fakeHelperEnv(t)
	path := filepath.Join(t.TempDir(), "config.json")
	// credsStore names a helper that does not exist: only hosts without a
	// credHelpers entry reach it.
	writeConfig(t, path, `{"credsStore": "missing", "credHelpers": {"r.example.com": "fake"}}`)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "r.example.com", Credential{Username: "u", Secret: "p"}); err != nil {
		t.Fatal(err)
	}
	if got := helperStoreContent(t, state)["r.example.com"]; got.Username != "u" {
		t.Fatalf("helper holds %+v", got)
	}
	if got, err := s.Get(ctx, "https://r.example.com/"); err != nil || got.Secret != "p" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	_, err = s.Get(ctx, "other.example.com")
	if !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("Get through a missing helper = %v, want exec.ErrNotFound", err)
	}
}

func TestHelperFailure(t *testing.T) {
	fakeHelperEnv(t)
	t.Setenv(envHelperFail, "the keychain is locked")
	path := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, path, `{"credsStore": "fake"}`)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Get(ctx, "r.example.com"); err == nil || !strings.Contains(err.Error(), "the keychain is locked") {
		t.Fatalf("Get = %v, want the helper's message", err)
	}
	if err := s.Put(ctx, "r.example.com", Credential{Username: "u", Secret: "p"}); err == nil {
		t.Fatal("Put through a failing helper succeeded")
	}
	// A failed Put leaves the file untouched.
	if cfg := readJSON(t, path); cfg["auths"] != nil {
		t.Fatalf("config changed by a failed Put: %v", cfg)
	}
}

func TestInvalidHelperName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, path, `{"credsStore": "../../bin/sh"}`)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), "r.example.com"); err == nil || !strings.Contains(err.Error(), "invalid credential helper name") {
		t.Fatalf("Get = %v, want an invalid helper name error", err)
	}
}

func TestHelperHonoursContext(t *testing.T) {
	fakeHelperEnv(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, path, `{"credsStore": "fake"}`)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx, "r.example.com"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context = %v", err)
	}
}
