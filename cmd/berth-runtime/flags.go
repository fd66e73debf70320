package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// A tiny flag parser with the conventions runc's users rely on: long flags
// with one or two dashes, "--flag value" and "--flag=value", short aliases,
// repeatable string flags, and parsing that stops at the first positional
// argument (so `exec ID cmd -x` passes -x to cmd).

type flagKind int

const (
	boolFlag flagKind = iota
	stringFlag
	listFlag
	intFlag
)

type flagDef struct {
	names []string
	kind  flagKind
	usage string
	def   string
}

type flagSet struct {
	defs   []*flagDef
	byName map[string]*flagDef
	bools  map[string]bool
	strs   map[string]string
	lists  map[string][]string
	set    map[string]bool
}

func newFlagSet(defs ...*flagDef) *flagSet {
	fs := &flagSet{byName: map[string]*flagDef{}, bools: map[string]bool{}, strs: map[string]string{}, lists: map[string][]string{}, set: map[string]bool{}}
	for _, d := range defs {
		fs.defs = append(fs.defs, d)
		for _, n := range d.names {
			fs.byName[n] = d
		}
		if d.kind == stringFlag || d.kind == intFlag {
			fs.strs[d.names[0]] = d.def
		}
	}
	return fs
}

func boolF(usage string, names ...string) *flagDef {
	return &flagDef{names: names, kind: boolFlag, usage: usage}
}
func strF(usage, def string, names ...string) *flagDef {
	return &flagDef{names: names, kind: stringFlag, usage: usage, def: def}
}
func listF(usage string, names ...string) *flagDef {
	return &flagDef{names: names, kind: listFlag, usage: usage}
}
func intF(usage, def string, names ...string) *flagDef {
	return &flagDef{names: names, kind: intFlag, usage: usage, def: def}
}

// parse consumes flags and returns the remaining arguments.
func (fs *flagSet) parse(args []string) ([]string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args[i+1:], nil
		}
		if len(a) < 2 || a[0] != '-' {
			return args[i:], nil
		}
		name := strings.TrimLeft(a, "-")
		val, hasVal := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, val, hasVal = k, v, true
		}
		d, ok := fs.byName[name]
		if !ok {
			return nil, fmt.Errorf("flag provided but not defined: -%s", name)
		}
		key := d.names[0]
		fs.set[key] = true
		if d.kind == boolFlag {
			b := true
			if hasVal {
				var err error
				if b, err = strconv.ParseBool(val); err != nil {
					return nil, fmt.Errorf("invalid boolean value %q for -%s", val, name)
				}
			}
			fs.bools[key] = b
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag needs an argument: -%s", name)
			}
			i++
			val = args[i]
		}
		switch d.kind {
		case intFlag:
			if _, err := strconv.Atoi(val); err != nil {
				return nil, fmt.Errorf("invalid value %q for flag -%s: must be an integer", val, name)
			}
			fs.strs[key] = val
		case stringFlag:
			fs.strs[key] = val
		case listFlag:
			fs.lists[key] = append(fs.lists[key], val)
		}
	}
	return nil, nil
}

func (fs *flagSet) Bool(name string) bool     { return fs.bools[name] }
func (fs *flagSet) String(name string) string { return fs.strs[name] }
func (fs *flagSet) List(name string) []string { return fs.lists[name] }
func (fs *flagSet) IsSet(name string) bool    { return fs.set[name] }
func (fs *flagSet) Int(name string) int {
	n, _ := strconv.Atoi(fs.strs[name])
	return n
}

func (fs *flagSet) usage() string {
	var b strings.Builder
	defs := append([]*flagDef{}, fs.defs...)
	sort.SliceStable(defs, func(i, j int) bool { return defs[i].names[0] < defs[j].names[0] })
	for _, d := range defs {
		var names []string
		for _, n := range d.names {
			if len(n) == 1 {
				names = append(names, "-"+n)
			} else {
				names = append(names, "--"+n)
			}
		}
		arg := ""
		switch d.kind {
		case stringFlag, listFlag:
			arg = " value"
		case intFlag:
			arg = " N"
		}
		line := "   " + strings.Join(names, ", ") + arg
		fmt.Fprintf(&b, "%-36s %s", line, d.usage)
		if d.def != "" {
			fmt.Fprintf(&b, " (default: %s)", d.def)
		}
		b.WriteString("\n")
	}
	return b.String()
}
