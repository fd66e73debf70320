package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fullConfig sets every key of the format.
const fullConfig = `
version = 1

[storage]
driver = "native"

[registry]
certs_dir = "/srv/certs.d"

[registry.hosts."docker.io"]
mirrors = ["mirror.internal:5000", "https://m2.example"]
insecure = false
ca_dir = ""

[registry.hosts."Mirror.Internal:5000"]
insecure = true

[engine]
cgroup_parent = "system.slice/berth-test"
default_runtime = "crun"

[engine.runtimes.crun]
path = "/usr/bin/crun"

[engine.runtimes.runsc]
path = "runsc"

[network]
default_network = "berthnet"
bridge_name = "berthtest0"
subnet = "172.30.0.0/24"
nft_table = "berth_test"
`

func TestParseFull(t *testing.T) {
	c, err := Parse([]byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	f := false
	tr := true
	want := &Config{
		Version: 1,
		Storage: Storage{Driver: DriverNative},
		Registries: Registries{
			CertsDir: "/srv/certs.d",
			Hosts: map[string]RegistryHostConfig{
				"docker.io":            {Mirrors: []string{"mirror.internal:5000", "https://m2.example"}, Insecure: &f},
				"mirror.internal:5000": {Insecure: &tr},
			},
		},
		Engine: Engine{
			CgroupParent:   "system.slice/berth-test",
			DefaultRuntime: "crun",
			Runtimes:       map[string]Runtime{"crun": {Path: "/usr/bin/crun"}, "runsc": {Path: "runsc"}},
		},
		Network: Network{DefaultNetwork: "berthnet", BridgeName: "berthtest0", Subnet: "172.30.0.0/24", NFTTable: "berth_test"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", c, want)
	}
}

func TestDefaults(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	tests := []struct {
		name string
		doc  string
		want func(*Config)
	}{
		{"empty file", "", func(*Config) {}},
		{"comments only", "# nothing here\n", func(*Config) {}},
		{"no version", "[storage]\ndriver = \"overlay\"\n", func(c *Config) { c.Storage.Driver = DriverOverlay }},
		{"partial table keeps other defaults", "[network]\nsubnet = \"10.99.0.0/16\"\n", func(c *Config) { c.Network.Subnet = "10.99.0.0/16" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")

	c, err := Load(missing, false)
	if err != nil {
		t.Fatalf("missing default file: %v", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("missing default file gave %+v", c)
	}

	if _, err := Load(missing, true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing explicit file: error %v, want fs.ErrNotExist", err)
	}

	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("[storage]\ndriver = \"overlay\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, explicit := range []bool{true, false} {
		c, err := Load(good, explicit)
		if err != nil || c.Storage.Driver != DriverOverlay {
			t.Errorf("Load(good, %v) = %+v, %v", explicit, c, err)
		}
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[storage]\ndriver = \"zfs\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad, false)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "storage.driver") {
		t.Errorf("Load(bad) error %v: want ErrInvalid naming the file and the key", err)
	}

	// A directory where the file should be is an error even by default.
	if _, err := Load(dir, false); err == nil {
		t.Error("Load(directory) succeeded")
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error
	}{
		{"top level", "version = 1\nfoo = 1\n", []string{"unknown configuration key: foo (line 2)"}},
		{"in a table", "[storage]\ndriverr = \"overlay\"\n", []string{"storage.driverr (line 2)"}},
		{"unknown table", "[bogus]\nx = 1\n", []string{"bogus (line 1)"}},
		{"in a registry host", "[registry.hosts.\"docker.io\"]\nmirror = [\"m\"]\n", []string{`registry.hosts."docker.io".mirror (line 2)`}},
		{"in a runtime", "[engine.runtimes.crun]\npath = \"/x\"\nargs = []\n", []string{"engine.runtimes.crun.args (line 3)"}},
		{"several at once", "a = 1\n[network]\nb = 2\n", []string{"unknown configuration key: a (line 1), network.b (line 3)"}},
		{"wrong case", "Version = 1\n", []string{"unknown configuration key: Version (keys are case-sensitive: version)"}},
		{"wrong case nested", "[network]\nSubnet = \"10.0.0.0/8\"\n", []string{"network.Subnet (keys are case-sensitive: network.subnet)"}},
		{"wrong case in a host", "[registry.hosts.x]\nInsecure = true\n", []string{"registry.hosts.x.Insecure (keys are case-sensitive: registry.hosts.x.insecure)"}},
		{"several wrong cases, sorted", "[Storage]\n[Engine]\n", []string{"key: Engine (keys are case-sensitive: engine), Storage (keys"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("error %v, want ErrUnknownKey", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestVersions(t *testing.T) {
	tests := []struct {
		doc     string
		wantErr error
	}{
		{"version = 1\n", nil},
		{"version = 2\n", ErrUnsupportedVersion},
		// A newer file's unknown keys are not what the user needs to hear.
		{"version = 2\n[cluster]\nnodes = 3\n", ErrUnsupportedVersion},
		{"version = 0\n", ErrUnsupportedVersion},
		{"version = -1\n", ErrUnsupportedVersion},
		{"version = \"1\"\n", ErrInvalid},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.doc))
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("Parse(%q) error %v, want %v", tc.doc, err, tc.wantErr)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		doc  string
		want string
	}{
		{"[storage\n", "line 1"},
		{"version = 1\nversion = 1\n", "line 2"},
		{"[storage]\ndriver = 3\n", "line 2"},
		{"[registry.hosts.x]\nmirrors = \"m\"\n", "registry.hosts.x.mirrors"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.doc))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error %v, want ErrInvalid mentioning %q", tc.doc, err, tc.want)
		}
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // the key the error must name
	}{
		{"driver", "[storage]\ndriver = \"zfs\"", `storage.driver "zfs"`},
		{"relative certs_dir", "[registry]\ncerts_dir = \"certs\"", "registry.certs_dir"},
		{"host with scheme", "[registry.hosts.\"https://docker.io\"]", `registry.hosts "https://docker.io"`},
		{"host with path", "[registry.hosts.\"docker.io/library\"]", `registry.hosts "docker.io/library"`},
		{"bare IPv6 host", "[registry.hosts.\"::1\"]", `registry.hosts "::1"`},
		{"port zero", "[registry.hosts.\"reg:0\"]", `registry.hosts "reg:0"`},
		{"port too big", "[registry.hosts.\"reg:65536\"]", `registry.hosts "reg:65536"`},
		{"empty port", "[registry.hosts.\"reg:\"]", `registry.hosts "reg:"`},
		{"bad label", "[registry.hosts.\"-bad-.example\"]", `registry.hosts "-bad-.example"`},
		{"empty host", "[registry.hosts.\"\"]", `registry.hosts ""`},
		{"same registry twice", "[registry.hosts.\"Docker.io\"]\n[registry.hosts.\"index.docker.io\"]", `names the same registry`},
		{"mirror scheme", "[registry.hosts.x]\nmirrors = [\"ftp://m\"]", `registry.hosts.x.mirrors "ftp://m"`},
		{"mirror credentials", "[registry.hosts.x]\nmirrors = [\"https://u:p@m\"]", `registry.hosts.x.mirrors "https://u:p@m"`},
		{"mirror path", "[registry.hosts.x]\nmirrors = [\"https://m/v2\"]", `registry.hosts.x.mirrors "https://m/v2"`},
		{"mirror path without scheme", "[registry.hosts.x]\nmirrors = [\"m/v2\"]", `registry.hosts.x.mirrors "m/v2"`},
		{"mirror query", "[registry.hosts.x]\nmirrors = [\"https://m?a=b\"]", `registry.hosts.x.mirrors "https://m?a=b"`},
		{"empty mirror", "[registry.hosts.x]\nmirrors = [\"\"]", `registry.hosts.x.mirrors ""`},
		{"mirror bad IPv6", "[registry.hosts.x]\nmirrors = [\"[::1\"]", `registry.hosts.x.mirrors "[::1"`},
		{"relative ca_dir", "[registry.hosts.x]\nca_dir = \"certs/x\"", "registry.hosts.x.ca_dir"},
		{"empty cgroup parent", "[engine]\ncgroup_parent = \"\"", "engine.cgroup_parent"},
		{"root cgroup parent", "[engine]\ncgroup_parent = \"/\"", "engine.cgroup_parent"},
		{"escaping cgroup parent", "[engine]\ncgroup_parent = \"../x\"", "engine.cgroup_parent"},
		{"unclean cgroup parent", "[engine]\ncgroup_parent = \"a//b\"", "engine.cgroup_parent"},
		{"dot cgroup parent", "[engine]\ncgroup_parent = \"a/./b\"", "engine.cgroup_parent"},
		{"undefined default runtime", "[engine]\ndefault_runtime = \"crun\"", `engine.default_runtime "crun"`},
		{"runtime without path", "[engine.runtimes.crun]\npath = \"\"", "engine.runtimes.crun.path"},
		{"runtime relative path", "[engine.runtimes.crun]\npath = \"bin/crun\"", "engine.runtimes.crun.path"},
		{"runtime name", "[engine.runtimes.\"my runtime\"]\npath = \"/x\"", `engine.runtimes "my runtime"`},
		{"empty default network", "[network]\ndefault_network = \"\"", "network.default_network"},
		{"default network name", "[network]\ndefault_network = \"-net\"", "network.default_network"},
		{"long bridge name", "[network]\nbridge_name = \"berth-bridge-0123\"", "network.bridge_name"},
		{"bridge name with slash", "[network]\nbridge_name = \"br/0\"", "network.bridge_name"},
		{"bridge name with space", "[network]\nbridge_name = \"br 0\"", "network.bridge_name"},
		{"dot bridge name", "[network]\nbridge_name = \".\"", "network.bridge_name"},
		{"subnet host bits", "[network]\nsubnet = \"10.88.0.1/16\"", `network.subnet "10.88.0.1/16": host bits set: the network is "10.88.0.0/16"`},
		{"subnet without length", "[network]\nsubnet = \"10.88.0.0\"", "network.subnet"},
		{"subnet garbage", "[network]\nsubnet = \"bogus\"", "network.subnet"},
		{"subnet too small", "[network]\nsubnet = \"10.0.0.0/31\"", "network.subnet"},
		{"IPv6 subnet too small", "[network]\nsubnet = \"fd00::/127\"", "network.subnet"},
		{"nft table digit", "[network]\nnft_table = \"1berth\"", "network.nft_table"},
		{"nft table space", "[network]\nnft_table = \"my table\"", "network.nft_table"},
		{"empty nft table", "[network]\nnft_table = \"\"", "network.nft_table"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc + "\n"))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestGoodValues(t *testing.T) {
	docs := []string{
		"[storage]\ndriver = \"\"",
		"[registry]\ncerts_dir = \"\"",
		"[registry.hosts.\"[::1]:5000\"]",
		"[registry.hosts.\"192.168.1.10\"]\nmirrors = [\"[fd00::1]:443\", \"http://10.0.0.1:5000/\", \"HTTPS://M.example\"]",
		"[registry.hosts.\"my-registry.example.com:443\"]\nca_dir = \"/etc/ssl/reg\"",
		"[engine]\ncgroup_parent = \"/berth\"",
		"[engine]\ndefault_runtime = \"runc\"\n[engine.runtimes.runc]\npath = \"runc\"",
		"[engine.runtimes.berth]\npath = \"/opt/berth/bin/berth-runtime\"",
		"[network]\nsubnet = \"fd00:b::/64\"\nbridge_name = \"br-0123456789ab\"\nnft_table = \"_berth.test-1\"",
	}
	for _, doc := range docs {
		if _, err := Parse([]byte(doc + "\n")); err != nil {
			t.Errorf("Parse(%q): %v", doc, err)
		}
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := Default()
	c.Storage.Driver = "zfs"
	c.Network.Subnet = "bogus"
	c.Engine.DefaultRuntime = "nope"
	err := c.Validate()
	for _, key := range []string{"storage.driver", "network.subnet", "engine.default_runtime"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
	c = Default()
	c.Version = 7
	if err := c.Validate(); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("version 7: %v", err)
	}
}
