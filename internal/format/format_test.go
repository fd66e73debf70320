package format

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"text/template"
)

type mount struct {
	Source string
}

type container struct {
	ID        string
	Names     string
	Image     string
	CreatedAt string
	Labels    map[string]string
	Tags      []string
	Mounts    []mount
	Config    struct{ Image string }
}

func (c container) Label(name string) string { return c.Labels[name] }

var (
	alpha = container{
		ID: "3f4e8a1b2c9d", Names: "web", Image: "nginx:1.27", CreatedAt: "2 hours ago",
		Labels: map[string]string{"tier": "<front>"}, Tags: []string{"a", "b"},
		Mounts: []mount{{Source: "/srv"}, {Source: "/data"}},
	}
	beta = container{ID: "77c0ffee0001", Names: "database-primary", Image: "postgres:16"}
)

func init() {
	alpha.Config.Image = "docker.io/library/nginx:1.27"
}

const psTable = `table {{.ID}}\t{{.Image}}\t{{.Names}}`

var psHeaders = map[string]string{"ID": "CONTAINER ID", ".Image": "IMAGE", "Names": "NAMES"}

func TestParseKinds(t *testing.T) {
	tests := []struct {
		format          string
		table, json     bool
		wantString      string
		wantParseFailed bool
	}{
		{format: "", table: true, wantString: psTable},
		{format: "  ", table: true, wantString: psTable},
		{format: "table", table: true, wantString: psTable},
		{format: "table {{.ID}}", table: true, wantString: "table {{.ID}}"},
		{format: `table\t{{.ID}}`, table: true, wantString: `table\t{{.ID}}`},
		{format: "json", json: true, wantString: "json"},
		{format: " json ", json: true, wantString: " json "},
		{format: "{{json .}}", wantString: "{{json .}}"},
		{format: "{{.ID}}", wantString: "{{.ID}}"},
		{format: "tables {{.ID}}", wantString: "tables {{.ID}}"},
		{format: "{{.ID", wantParseFailed: true},
		{format: "{{nosuchfunc .ID}}", wantParseFailed: true},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			tmpl, err := Parse(tc.format, psTable, psHeaders)
			if tc.wantParseFailed {
				if !errors.Is(err, ErrInvalidTemplate) {
					t.Fatalf("Parse(%q) error = %v, want ErrInvalidTemplate", tc.format, err)
				}
				if !strings.Contains(err.Error(), tc.format) {
					t.Errorf("error %q does not name the template %q", err, tc.format)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tmpl.IsTable() != tc.table || tmpl.IsJSON() != tc.json {
				t.Errorf("IsTable=%v IsJSON=%v, want %v %v", tmpl.IsTable(), tmpl.IsJSON(), tc.table, tc.json)
			}
			if tmpl.String() != tc.wantString {
				t.Errorf("String() = %q, want %q", tmpl.String(), tc.wantString)
			}
		})
	}
}

func TestParseEmptyTemplate(t *testing.T) {
	for _, format := range []string{"table", "", "   "} {
		if _, err := Parse(format, "table", nil); !errors.Is(err, ErrInvalidTemplate) {
			t.Errorf("Parse(%q) with an empty default: error = %v, want ErrInvalidTemplate", format, err)
		}
	}
}

func TestExecuteList(t *testing.T) {
	items := []any{alpha, beta}
	tests := []struct {
		name   string
		format string
		items  []any
		want   string
	}{
		{
			name:   "default table aligns like docker",
			format: "",
			items:  items,
			want: "CONTAINER ID   IMAGE         NAMES\n" +
				"3f4e8a1b2c9d   nginx:1.27    web\n" +
				"77c0ffee0001   postgres:16   database-primary\n",
		},
		{
			name:   "short columns are at least ten wide",
			format: `table {{.Names}}\t{{.ID}}`,
			items:  []any{alpha},
			want: "NAMES     CONTAINER ID\n" +
				"web       3f4e8a1b2c9d\n",
		},
		{
			name:   "table without items has its header",
			format: "table",
			items:  nil,
			want:   "CONTAINER ID   IMAGE     NAMES\n",
		},
		{
			name:   "header falls back to the field name",
			format: `table {{.ID}}\t{{.CreatedAt}}`,
			items:  []any{alpha},
			want: "CONTAINER ID   CREATED AT\n" +
				"3f4e8a1b2c9d   2 hours ago\n",
		},
		{
			name:   "header keeps text and titles functions, blocks and nested fields",
			format: `table {{.Image}}@{{upper .Names}}\t{{range .Mounts}}{{.Source}},{{end}}\t{{.Config.Image}}\t{{.Label "tier"}}\t{{$.ID | printf "%.4s"}}`,
			items:  []any{alpha},
			want: "IMAGE@NAMES      MOUNTS        IMAGE                          LABEL     CONTAINER ID\n" +
				"nginx:1.27@WEB   /srv,/data,   docker.io/library/nginx:1.27   <front>   3f4e\n",
		},
		{
			name:   "plain template, one line per item, escapes expanded",
			format: ` {{.Names}}\t{{.ID}} `,
			items:  items,
			want:   "web\t3f4e8a1b2c9d\ndatabase-primary\t77c0ffee0001\n",
		},
		{
			name:   "json lines",
			format: "json",
			items:  []any{map[string]string{"ID": "a", "Tag": "<none>"}, map[string]int{"Size": 3}},
			want:   `{"ID":"a","Tag":"<none>"}` + "\n" + `{"Size":3}` + "\n",
		},
		{
			name:   "json function",
			format: "{{json .Tags}} {{json .Labels}}",
			items:  []any{alpha},
			want:   `["a","b"] {"tier":"<front>"}` + "\n",
		},
		{
			name:   "plain template without items",
			format: "{{.ID}}",
			items:  nil,
			want:   "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := Parse(tc.format, psTable, psHeaders)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := tmpl.Execute(&out, tc.items); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", quoteLines(out.String()), quoteLines(tc.want))
			}
		})
	}
}

func quoteLines(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString(strings.ReplaceAll(l, "\t", `\t`))
		}
	}
	return b.String()
}

func TestExecuteErrorWritesNothing(t *testing.T) {
	for _, format := range []string{`table {{.ID}}\t{{.Nope}}`, "{{.Nope}}"} {
		tmpl, err := Parse(format, psTable, psHeaders)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = tmpl.Execute(&out, []any{alpha})
		var execErr template.ExecError
		if !errors.As(err, &execErr) {
			t.Fatalf("%q: error %v, want a template.ExecError", format, err)
		}
		if !strings.Contains(err.Error(), strconv.Quote(format)) || !strings.Contains(err.Error(), "Nope") {
			t.Errorf("error %q names neither the template nor the field", err)
		}
		if out.Len() != 0 {
			t.Errorf("%q: wrote %q despite the error", format, out.String())
		}
	}
}

func TestParseInspect(t *testing.T) {
	items := []any{map[string]any{"Id": "abc", "Tag": "<x>"}, map[string]any{"Id": "def"}}
	tests := []struct {
		format string
		items  []any
		want   string
		json   bool
	}{
		{format: "", items: items, json: true, want: "[\n    {\n        \"Id\": \"abc\",\n        \"Tag\": \"\\u003cx\\u003e\"\n    },\n    {\n        \"Id\": \"def\"\n    }\n]\n"},
		{format: "", items: nil, json: true, want: "[]\n"},
		{format: "json", items: items, json: true, want: `[{"Id":"abc","Tag":"\u003cx\u003e"},{"Id":"def"}]` + "\n"},
		{format: "json", items: nil, json: true, want: "[]\n"},
		{format: "{{.Id}}", items: items, want: "abc\ndef\n"},
		// Inspect templates are verbatim: no escape expansion, no trimming.
		{format: ` {{.Id}}\t`, items: items[:1], want: ` abc\t` + "\n"},
		// docker prints an empty line when nothing could be inspected.
		{format: "{{.Id}}", items: nil, want: "\n"},
		// "table" means nothing special to inspect.
		{format: "table {{.Id}}", items: items[:1], want: "table abc\n"},
	}
	for _, tc := range tests {
		tmpl, err := ParseInspect(tc.format)
		if err != nil {
			t.Fatalf("ParseInspect(%q): %v", tc.format, err)
		}
		if tmpl.IsJSON() != tc.json || tmpl.IsTable() {
			t.Errorf("%q: IsJSON=%v IsTable=%v", tc.format, tmpl.IsJSON(), tmpl.IsTable())
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, tc.items); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if out.String() != tc.want {
			t.Errorf("%q with %d items: got %q, want %q", tc.format, len(tc.items), out.String(), tc.want)
		}
	}
	if _, err := ParseInspect("{{.Id"); !errors.Is(err, ErrInvalidTemplate) || !strings.Contains(err.Error(), "{{.Id") {
		t.Errorf("ParseInspect of a broken template: %v", err)
	}
}

func TestFuncs(t *testing.T) {
	tests := []struct {
		format string
		want   string
	}{
		{`{{join .Tags ", "}}`, "a, b"},
		{`{{split .Image ":"}}`, "[nginx 1.27]"},
		{`{{index (split .Image ":") 1}}`, "1.27"},
		{`{{lower "MiXed"}}`, "mixed"},
		{`{{upper .Names}}`, "WEB"},
		{`{{title "hello wide-world foo_bar"}}`, "Hello Wide-World Foo_bar"},
		{`{{truncate .ID 4}}`, "3f4e"},
		{`{{truncate .ID 40}}`, "3f4e8a1b2c9d"},
		{`{{truncate "héllo" 2}}`, "hé"},
		{`{{truncate .ID -1}}`, ""},
		{`[{{pad .Names 1 2}}]`, "[ web  ]"},
		{`[{{pad "" 1 2}}]`, "[]"},
		{`[{{pad .Names -1 0}}]`, "[web]"},
		{`{{println .Names}}`, "web\n"},
		{`{{json "a<b&c"}}`, `"a<b&c"`},
	}
	for _, tc := range tests {
		tmpl, err := Parse(tc.format, "", nil)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.format, err)
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, []any{alpha}); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if got := strings.TrimSuffix(out.String(), "\n"); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.format, got, tc.want)
		}
	}
}

func TestTitleFromName(t *testing.T) {
	tests := map[string]string{
		"ID":          "ID",
		"Names":       "NAMES",
		"CreatedAt":   "CREATED AT",
		"IPAddress":   "IP ADDRESS",
		"RepoDigests": "REPO DIGESTS",
		"IPv6":        "IPV6",
		"HTTPProxy":   "HTTP PROXY",
		"ABc":         "ABC",
		"Size2Go":     "SIZE2 GO",
		"cpu_percent": "CPU PERCENT",
	}
	for in, want := range tests {
		if got := titleFromName(in); got != want {
			t.Errorf("titleFromName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderSkipsDeclarations(t *testing.T) {
	tmpl, err := Parse(`table {{$n := .Names}}{{$n}}\t{{.ID}}`, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.header != "\tID" {
		t.Errorf("header = %q, want %q", tmpl.header, "\tID")
	}
}
