package config

import (
	"reflect"
	"testing"
)

func TestRegistry(t *testing.T) {
	c, err := Parse([]byte(`
[registry]
certs_dir = "/certs"

[registry.hosts."docker.io"]
mirrors = ["Mirror.Internal:5000", "https://m2.example/", "http://127.0.0.1:6000"]

[registry.hosts."mirror.internal:5000"]
insecure = true

[registry.hosts."m2.example"]
ca_dir = "/etc/m2-ca"

[registry.hosts."localhost:5000"]
insecure = false

[registry.hosts."reg.example"]
ca_dir = "/custom"
`))
	if err != nil {
		t.Fatal(err)
	}
	dockerHub := RegistryHost{
		Host:  "docker.io",
		CADir: "/certs/docker.io",
		Mirrors: []Mirror{
			{Host: "mirror.internal:5000", Insecure: true, CADir: "/certs/mirror.internal:5000"},
			{Scheme: "https", Host: "m2.example", CADir: "/etc/m2-ca"},
			{Scheme: "http", Host: "127.0.0.1:6000", Insecure: true, CADir: "/certs/127.0.0.1:6000"},
		},
	}
	tests := []struct {
		host string
		want RegistryHost
	}{
		{"docker.io", dockerHub},
		{"index.docker.io", dockerHub},
		{"DOCKER.IO", dockerHub},
		{"mirror.internal:5000", RegistryHost{Host: "mirror.internal:5000", Insecure: true, CADir: "/certs/mirror.internal:5000"}},
		// Loopback registries are insecure unless configured otherwise.
		{"localhost:5000", RegistryHost{Host: "localhost:5000", CADir: "/certs/localhost:5000"}},
		{"localhost:5001", RegistryHost{Host: "localhost:5001", Insecure: true, CADir: "/certs/localhost:5001"}},
		{"localhost", RegistryHost{Host: "localhost", Insecure: true, CADir: "/certs/localhost"}},
		{"127.0.0.1:5000", RegistryHost{Host: "127.0.0.1:5000", Insecure: true, CADir: "/certs/127.0.0.1:5000"}},
		{"127.8.9.10", RegistryHost{Host: "127.8.9.10", Insecure: true, CADir: "/certs/127.8.9.10"}},
		{"[::1]:5000", RegistryHost{Host: "[::1]:5000", Insecure: true, CADir: "/certs/[::1]:5000"}},
		{"[::ffff:127.0.0.1]:80", RegistryHost{Host: "[::ffff:127.0.0.1]:80", Insecure: true, CADir: "/certs/[::ffff:127.0.0.1]:80"}},
		{"10.0.0.1:5000", RegistryHost{Host: "10.0.0.1:5000", CADir: "/certs/10.0.0.1:5000"}},
		{"localhost.example.com", RegistryHost{Host: "localhost.example.com", CADir: "/certs/localhost.example.com"}},
		{"reg.example", RegistryHost{Host: "reg.example", CADir: "/custom"}},
		{"quay.io", RegistryHost{Host: "quay.io", CADir: "/certs/quay.io"}},
	}
	for _, tc := range tests {
		if got := c.Registry(tc.host); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Registry(%q) =\n%+v\nwant\n%+v", tc.host, got, tc.want)
		}
	}
}

func TestRegistryWithoutCertsDir(t *testing.T) {
	c := Default()
	c.Registries.CertsDir = ""
	if got := c.Registry("quay.io"); got.CADir != "" {
		t.Errorf("CADir %q without certs_dir", got.CADir)
	}
}

// A Config built in code need not have canonical host keys.
func TestRegistryNonCanonicalKeys(t *testing.T) {
	secure := false
	c := Default()
	c.Registries.Hosts["Index.Docker.IO"] = RegistryHostConfig{Mirrors: []string{"m.example"}}
	c.Registries.Hosts["LocalHost:5000"] = RegistryHostConfig{Insecure: &secure}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.Registry("docker.io"); len(got.Mirrors) != 1 || got.Mirrors[0].Host != "m.example" {
		t.Errorf("docker.io mirrors %+v", got.Mirrors)
	}
	if got := c.Registry("localhost:5000"); got.Insecure {
		t.Error("explicit insecure = false ignored")
	}
}
