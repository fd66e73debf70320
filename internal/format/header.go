package format

import (
	"strings"
	"text/template/parse"
	"unicode"
)

// renderHeader renders the header row of a table template: text is kept and
// every action is replaced by the title of the field it shows.
func renderHeader(root *parse.ListNode, headers map[string]string) string {
	var b strings.Builder
	writeHeader(&b, root, headers)
	return b.String()
}

func writeHeader(b *strings.Builder, list *parse.ListNode, headers map[string]string) {
	if list == nil {
		return
	}
	for _, node := range list.Nodes {
		switch n := node.(type) {
		case *parse.TextNode:
			b.Write(n.Text)
		case *parse.ActionNode:
			// {{$x := .Name}} declares a variable and prints nothing.
			if len(n.Pipe.Decl) == 0 {
				b.WriteString(fieldTitle(pipeField(n.Pipe), headers))
			}
		case *parse.IfNode:
			b.WriteString(fieldTitle(pipeField(n.Pipe), headers))
		case *parse.RangeNode:
			b.WriteString(fieldTitle(pipeField(n.Pipe), headers))
		case *parse.WithNode:
			b.WriteString(fieldTitle(pipeField(n.Pipe), headers))
		}
	}
}

// pipeField returns the path ("Config.Image") of the first field the pipe
// refers to, or "" if it refers to none.
func pipeField(pipe *parse.PipeNode) string {
	if pipe == nil {
		return ""
	}
	for _, cmd := range pipe.Cmds {
		for _, arg := range cmd.Args {
			if path := nodeField(arg); path != "" {
				return path
			}
		}
	}
	return ""
}

func nodeField(node parse.Node) string {
	switch n := node.(type) {
	case *parse.FieldNode:
		return strings.Join(n.Ident, ".")
	case *parse.VariableNode:
		// $.Name or $v.Name: the path after the variable.
		if len(n.Ident) > 1 {
			return strings.Join(n.Ident[1:], ".")
		}
	case *parse.ChainNode:
		// (.Config).Image
		inner := nodeField(n.Node)
		if inner == "" {
			return strings.Join(n.Field, ".")
		}
		return inner + "." + strings.Join(n.Field, ".")
	case *parse.PipeNode:
		return pipeField(n)
	}
	return ""
}

// fieldTitle returns the column title of a field path: the caller's, or one
// derived from the last element of the path.
func fieldTitle(path string, headers map[string]string) string {
	if path == "" {
		return ""
	}
	if h, ok := headers[path]; ok {
		return h
	}
	return titleFromName(path[strings.LastIndexByte(path, '.')+1:])
}

// titleFromName turns a Go field name into a column title: "CreatedAt"
// becomes "CREATED AT", "IPAddress" "IP ADDRESS", "ID" stays "ID".
func titleFromName(name string) string {
	runes := []rune(name)
	var b strings.Builder
	for i, r := range runes {
		if r == '_' {
			b.WriteByte(' ')
			continue
		}
		if i > 0 && unicode.IsUpper(r) {
			prev := runes[i-1]
			// An acronym ends before its last capital when a lower-case
			// letter follows ("IPAddress"), unless the acronym would be a
			// single letter ("IPv6").
			acronymEnd := unicode.IsUpper(prev) && i+1 < len(runes) && unicode.IsLower(runes[i+1]) &&
				i >= 2 && unicode.IsUpper(runes[i-2])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || acronymEnd {
				b.WriteByte(' ')
			}
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// normalizeHeaders returns headers keyed by field path without a leading
// dot, so callers may write either ".ID" or "ID".
func normalizeHeaders(headers map[string]string) map[string]string {
	out := make(map[string]string, len(headers))
	for k, v := range headers {
		out[strings.TrimPrefix(k, ".")] = v
	}
	return out
}
