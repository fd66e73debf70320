package format

import (
	"bytes"
	"encoding/json"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"
)

// funcs are the template functions docker's --format offers, next to
// text/template's built-ins (print, printf, println, index, len, ...).
var funcs = template.FuncMap{
	"json":     jsonString,
	"split":    strings.Split,
	"join":     strings.Join,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"title":    title,
	"truncate": truncate,
	"pad":      pad,
}

// marshalJSON encodes v as compact JSON without escaping <, > and &, which
// would only make shell output harder to read.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonString is the "json" template function.
func jsonString(v any) (string, error) {
	b, err := marshalJSON(v)
	return string(b), err
}

// title upper-cases the first letter of every word, as the deprecated
// strings.Title does: words are separated by anything that is not a letter,
// digit, mark or underscore.
func title(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	prevSep := true
	for _, r := range s {
		if prevSep {
			b.WriteRune(unicode.ToTitle(r))
		} else {
			b.WriteRune(r)
		}
		prevSep = !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '_')
	}
	return b.String()
}

// truncate keeps the first length characters of s. Unlike docker's, it
// never cuts a multi-byte character in half.
func truncate(s string, length int) string {
	if length <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= length {
		return s
	}
	n := 0
	for i := range s {
		if n == length {
			return s[:i]
		}
		n++
	}
	return s
}

// pad surrounds a non-empty s with prefix spaces before and suffix spaces
// after; an empty s stays empty, so an absent value does not widen a column.
func pad(s string, prefix, suffix int) string {
	if s == "" {
		return s
	}
	return strings.Repeat(" ", max(prefix, 0)) + s + strings.Repeat(" ", max(suffix, 0))
}
