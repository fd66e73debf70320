// Package format implements docker-compatible --format handling for list and
// inspect commands: Go templates with docker's template functions, the
// "table" prefix with a header row and tabwriter alignment, and the "json"
// shorthand.
//
// List commands (ps, images, volume ls, ...) use Parse:
//
//	""                        the command's default table
//	"table"                   the command's default table
//	"table {{.ID}}\t{{.Name}}" a table with a header row
//	"json"                    one JSON object per item and line (docker 24+)
//	"{{.ID}}: {{.Name}}"      one template execution per item and line
//
// Inspect commands use ParseInspect:
//
//	""                        an indented JSON array of all items
//	"json"                    a compact JSON array on one line
//	"{{.State.Status}}"       one template execution per item and line
//
// Templates can call json, join, split, lower, upper, title, truncate and pad
// as in docker, next to text/template's built-ins (print, printf, println,
// index, len, ...). As in docker, the literal two-character sequences `\t`
// and `\n` in a list format stand for a tab and a newline, and spaces around
// a list format are ignored.
package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

// ErrInvalidTemplate is wrapped by the errors Parse and ParseInspect return
// for a format that is not a valid template.
var ErrInvalidTemplate = errors.New("invalid format template")

const (
	tableKey = "table"
	jsonKey  = "json"
)

// Table layout, as docker's: a column is at least 10 cells wide and columns
// are separated by at least 3 spaces.
const (
	tableMinWidth = 10
	tableTabWidth = 1
	tablePadding  = 3
)

// kind is how a Template renders its items.
type kind int

const (
	kindTemplate  kind = iota // one template execution per item and line
	kindTable                 // header row, then one row per item, aligned
	kindJSONLines             // one compact JSON object per item and line
	kindJSONArray             // all items as one JSON array (inspect)
)

// Template is a parsed --format value. It is safe for concurrent use.
type Template struct {
	source string // the format used (the user's or the default), for errors
	kind   kind
	tmpl   *template.Template // nil for the JSON kinds
	header string             // table header row, without a newline
	indent bool               // kindJSONArray: indented rather than compact
	// inspect marks ParseInspect templates: without items they still write
	// an empty line, as docker inspect does.
	inspect bool
}

// Parse parses the --format value of a list command.
//
// An empty format and the bare word "table" select defaultTable, the
// command's own table format (e.g. "table {{.ID}}\t{{.Name}}"). headers maps
// a field path, with or without the leading dot ("ID", ".Config.Image"), to
// the column title shown in a table's header row (e.g. "ID" → "CONTAINER ID").
// A field missing from headers is titled after its name: "CreatedAt" becomes
// "CREATED AT".
//
// The header row is the table template with every action replaced by the
// title of the field it shows: "{{.Repository}}:{{.Tag}}" gives
// "REPOSITORY:TAG", "{{json .Labels}}" gives "LABELS", and an if, range or
// with block is titled after the field of its condition.
func Parse(format, defaultTable string, headers map[string]string) (*Template, error) {
	if trimmed := strings.TrimSpace(format); trimmed == "" || trimmed == tableKey {
		format = defaultTable
	}
	source := format
	format = strings.Trim(format, " ")
	if format == jsonKey {
		return &Template{source: source, kind: kindJSONLines}, nil
	}

	k := kindTemplate
	if body, ok := cutTablePrefix(format); ok {
		k = kindTable
		format = body
	}
	format = unescapeFormat(strings.Trim(format, " "))
	if format == "" {
		return nil, fmt.Errorf("%w %q: empty template", ErrInvalidTemplate, source)
	}

	tmpl, err := newTemplate(format)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidTemplate, source, err)
	}
	t := &Template{source: source, kind: k, tmpl: tmpl}
	if k == kindTable && tmpl.Tree != nil {
		t.header = renderHeader(tmpl.Tree.Root, normalizeHeaders(headers))
	}
	return t, nil
}

// ParseInspect parses the --format value of an inspect command. Unlike list
// formats, inspect templates are used verbatim, as docker does.
func ParseInspect(format string) (*Template, error) {
	switch format {
	case "":
		return &Template{source: format, kind: kindJSONArray, indent: true}, nil
	case jsonKey:
		return &Template{source: format, kind: kindJSONArray}, nil
	}
	tmpl, err := newTemplate(format)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidTemplate, format, err)
	}
	return &Template{source: format, kind: kindTemplate, tmpl: tmpl, inspect: true}, nil
}

// IsTable reports whether t renders a table with a header row.
func (t *Template) IsTable() bool { return t.kind == kindTable }

// IsJSON reports whether t renders items as JSON (the "json" shorthand, or
// an inspect command's default output).
func (t *Template) IsJSON() bool { return t.kind == kindJSONLines || t.kind == kindJSONArray }

// String returns the format in use: the one given to Parse or ParseInspect,
// or the default table format it stood for.
func (t *Template) String() string { return t.source }

// Execute renders items to w. Nothing is written if rendering any item
// fails, so a bad field name never leaves half a table behind.
//
// A table always has its header row, even without items. An inspect
// template without items writes an empty line, as docker does.
func (t *Template) Execute(w io.Writer, items []any) error {
	var buf bytes.Buffer
	switch t.kind {
	case kindJSONArray:
		if err := t.writeJSONArray(&buf, items); err != nil {
			return err
		}
	case kindJSONLines:
		for _, item := range items {
			b, err := marshalJSON(item)
			if err != nil {
				return fmt.Errorf("format %q: %w", t.source, err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
	case kindTable:
		tw := tabwriter.NewWriter(&buf, tableMinWidth, tableTabWidth, tablePadding, ' ', 0)
		io.WriteString(tw, t.header+"\n")
		if err := t.executeEach(tw, items); err != nil {
			return err
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("format %q: %w", t.source, err)
		}
	case kindTemplate:
		if err := t.executeEach(&buf, items); err != nil {
			return err
		}
		if len(items) == 0 && t.inspect {
			buf.WriteByte('\n')
		}
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write formatted output: %w", err)
	}
	return nil
}

// executeEach executes the template once per item, each followed by a
// newline.
func (t *Template) executeEach(w io.Writer, items []any) error {
	var row bytes.Buffer
	for _, item := range items {
		row.Reset()
		if err := t.tmpl.Execute(&row, item); err != nil {
			return fmt.Errorf("format %q: %w", t.source, err)
		}
		row.WriteByte('\n')
		if _, err := w.Write(row.Bytes()); err != nil {
			return fmt.Errorf("format %q: %w", t.source, err)
		}
	}
	return nil
}

// writeJSONArray writes items as one JSON array and a newline; an empty list
// is "[]".
func (t *Template) writeJSONArray(buf *bytes.Buffer, items []any) error {
	if items == nil {
		items = []any{}
	}
	var (
		b   []byte
		err error
	)
	if t.indent {
		b, err = json.MarshalIndent(items, "", "    ")
	} else {
		b, err = json.Marshal(items)
	}
	if err != nil {
		return fmt.Errorf("format %q: %w", t.source, err)
	}
	buf.Write(b)
	buf.WriteByte('\n')
	return nil
}

// cutTablePrefix reports whether format is a table format ("table" followed
// by white space) and returns the template after the prefix.
func cutTablePrefix(format string) (string, bool) {
	rest, ok := strings.CutPrefix(format, tableKey)
	if !ok {
		return format, false
	}
	if rest == "" {
		return "", true
	}
	if r := rest[0]; r == ' ' || r == '\t' || r == '\n' {
		return rest, true
	}
	// The two-character escape `\t` right after "table" also separates.
	if strings.HasPrefix(rest, `\t`) || strings.HasPrefix(rest, `\n`) {
		return rest, true
	}
	return format, false
}

// unescapeFormat turns the literal sequences `\t` and `\n`, which shells make
// awkward to type, into a tab and a newline.
func unescapeFormat(s string) string {
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(s)
}

// newTemplate parses text with docker's template functions. The template is
// anonymous, as docker's, so error messages read "template: :1:2: ...".
func newTemplate(text string) (*template.Template, error) {
	return template.New("").Funcs(funcs).Parse(text)
}
