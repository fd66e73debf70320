package image

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ConfigFile is an image configuration as docker writes it: the OCI image
// configuration plus docker's extensions, which the OCI type drops
// (OnBuild, Healthcheck, Shell, and the legacy top-level fields). Reading
// and rewriting a configuration through ConfigFile keeps them.
type ConfigFile struct {
	ocispec.Image
	// Config shadows ocispec.Image.Config with docker's superset.
	Config        ContainerConfig `json:"config,omitzero"`
	Comment       string          `json:"comment,omitempty"`
	DockerVersion string          `json:"docker_version,omitempty"`
	Container     string          `json:"container,omitempty"`
}

// ContainerConfig is the "config" object of an image configuration, with
// docker's fields beyond the OCI ones.
type ContainerConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
	OnBuild      []string            `json:"OnBuild,omitempty"`
	Healthcheck  *HealthConfig       `json:"Healthcheck,omitempty"`
	Shell        []string            `json:"Shell,omitempty"`
}

// HealthConfig is docker's HEALTHCHECK in an image configuration.
type HealthConfig struct {
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
}

func decodeConfig(data []byte) (*ConfigFile, error) {
	var c ConfigFile
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode image configuration: %w", err)
	}
	return &c, nil
}

// ApplyChanges applies Dockerfile instructions, as `docker import --change`
// and `docker commit --change` accept them (CMD, ENTRYPOINT, ENV, EXPOSE,
// LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR), to c.
func ApplyChanges(c *ContainerConfig, changes []string) error {
	for _, ch := range changes {
		if err := applyChange(c, ch); err != nil {
			return fmt.Errorf("%w: --change %q: %w", ErrInvalid, ch, err)
		}
	}
	return nil
}

func applyChange(c *ContainerConfig, change string) error {
	change = strings.TrimSpace(change)
	instr, rest, _ := strings.Cut(change, " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = cmdForm(rest)
	case "ENTRYPOINT":
		c.Entrypoint = cmdForm(rest)
	case "ENV":
		kvs, err := keyValues(rest, true)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			c.Env = setEnv(c.Env, kv[0], kv[1])
		}
	case "LABEL":
		kvs, err := keyValues(rest, false)
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range kvs {
			c.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if rest == "" {
			return fmt.Errorf("EXPOSE requires at least one argument")
		}
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			port, proto, _ := strings.Cut(p, "/")
			if proto == "" {
				proto = "tcp"
			}
			if port == "" || strings.Trim(port, "0123456789-") != "" {
				return fmt.Errorf("invalid port %q", p)
			}
			c.ExposedPorts[port+"/"+strings.ToLower(proto)] = struct{}{}
		}
	case "VOLUME":
		vols := jsonArray(rest)
		if vols == nil {
			vols = strings.Fields(rest)
		}
		if len(vols) == 0 {
			return fmt.Errorf("VOLUME requires at least one argument")
		}
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			c.Volumes[v] = struct{}{}
		}
	case "USER":
		if rest == "" {
			return fmt.Errorf("USER requires exactly one argument")
		}
		c.User = rest
	case "WORKDIR":
		if rest == "" {
			return fmt.Errorf("WORKDIR requires exactly one argument")
		}
		if !strings.HasPrefix(rest, "/") {
			rest = strings.TrimSuffix(c.WorkingDir, "/") + "/" + rest
		}
		c.WorkingDir = rest
	case "STOPSIGNAL":
		if rest == "" {
			return fmt.Errorf("STOPSIGNAL requires exactly one argument")
		}
		c.StopSignal = rest
	case "ONBUILD":
		if rest == "" {
			return fmt.Errorf("ONBUILD requires at least one argument")
		}
		c.OnBuild = append(c.OnBuild, rest)
	case "":
		return fmt.Errorf("empty instruction")
	default:
		return fmt.Errorf("%s is not a valid change instruction (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR)", instr)
	}
	return nil
}

// cmdForm parses the exec form (a JSON array) or the shell form.
func cmdForm(s string) []string {
	if a := jsonArray(s); a != nil {
		return a
	}
	if s == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", s}
}

func jsonArray(s string) []string {
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var a []string
	if json.Unmarshal([]byte(s), &a) != nil {
		return nil
	}
	return a
}

// keyValues parses "k=v k2="v 2"" or, for ENV, the legacy "k v" form.
func keyValues(s string, legacy bool) ([][2]string, error) {
	if s == "" {
		return nil, fmt.Errorf("requires at least one argument")
	}
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	if legacy && !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not of the form KEY=VALUE", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on blanks, honouring double and single quotes and
// backslash escapes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	esc := false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\' && quote != '\'':
			esc = true
			inWord = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote = r
			inWord = true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// SortedKeys returns a set's keys in order.
func SortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
