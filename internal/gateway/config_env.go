package gateway

// ${NAME} placeholders in a gateway config: the values are data, put into
// the parsed YAML tree, never YAML text (ParseConfig).

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// envVars maps the placeholder words of a config to their variables.
type envVars struct {
	names  map[string]string // placeholder → variable name
	values map[string]string // placeholder → value
}

// placeholders replaces every ${NAME} outside comments by a placeholder
// word of at most 10 characters (so YAML's messages quote it whole) that
// occurs nowhere in b, and reads the variables; unset or empty ones are
// an error naming them all.
func placeholders(b []byte, getenv func(string) string) ([]byte, envVars, error) {
	vars := envVars{names: map[string]string{}, values: map[string]string{}}
	var prefix string
	for prefix == "" || bytes.Contains(b, []byte(prefix)) {
		prefix = "lh" + randomHex(2) + "v"
	}
	byName := map[string]string{}
	var missing []string
	replace := func(m []byte) []byte {
		name := string(m[2 : len(m)-1])
		if p, ok := byName[name]; ok {
			return []byte(p)
		}
		v := ""
		if getenv != nil {
			v = getenv(name)
		}
		if v == "" {
			missing = append(missing, name)
		}
		p := fmt.Sprintf("%s%d", prefix, len(byName))
		byName[name], vars.names[p], vars.values[p] = p, name, v
		return []byte(p)
	}
	var text []byte
	for line := range bytes.SplitAfterSeq(b, []byte("\n")) {
		cut := commentStart(line)
		text = append(text, envRE.ReplaceAllFunc(line[:cut], replace)...)
		text = append(text, line[cut:]...)
	}
	if len(missing) > 0 {
		return nil, vars, fmt.Errorf("gateway: config: environment variables not set: %s", strings.Join(missing, ", "))
	}
	return text, vars, nil
}

// structureError is err of the strict pass without the type errors of
// placeholders standing for whole values (their values are typed later),
// with every placeholder in the rest named as ${NAME}; nil if nothing is
// left.
func (v envVars) structureError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return errors.New(v.named(err.Error()))
	}
	var kept []string
	for _, m := range te.Errors {
		if strings.Contains(m, "cannot unmarshal") && v.mentioned(m) {
			continue
		}
		kept = append(kept, v.named(m))
	}
	if len(kept) == 0 {
		return nil
	}
	return &yaml.TypeError{Errors: kept}
}

func (v envVars) mentioned(s string) bool {
	for p := range v.names {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func (v envVars) named(s string) string {
	for p, name := range v.names {
		s = strings.ReplaceAll(s, p, "${"+name+"}")
	}
	return s
}

// expand replaces the placeholders in n's scalars (keys too) by their
// values and returns the variables used on each line, for messages.
func (v envVars) expand(n *yaml.Node) map[int][]string {
	lines := map[int][]string{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && v.mentioned(n.Value) {
			whole, isWhole := v.values[n.Value]
			for p, name := range v.names {
				if strings.Contains(n.Value, p) && !slices.Contains(lines[n.Line], name) {
					lines[n.Line] = append(lines[n.Line], name)
				}
			}
			if isWhole && n.Style == 0 {
				n.Value, n.Tag = whole, "" // typed as if written here
				if isNull(whole) {
					n.Tag = "!!str"
				}
			} else {
				for p, val := range v.values {
					n.Value = strings.ReplaceAll(n.Value, p, val)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return lines
}

// isNull reports whether YAML reads the plain scalar s as null.
func isNull(s string) bool {
	switch s {
	case "~", "null", "Null", "NULL":
		return true
	}
	return false
}

// valueErrorRE is the value a type error quotes.
var valueErrorRE = regexp.MustCompile("^line (\\d+): cannot unmarshal (\\S+) `[^`]*`")

// valueError is a type error of a variable's value, with the value —
// perhaps a secret — replaced by the variables the line uses.
func valueError(err error, lines map[int][]string) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = valueErrorRE.ReplaceAllStringFunc(m, func(s string) string {
			sub := valueErrorRE.FindStringSubmatch(s)
			line, _ := strconv.Atoi(sub[1])
			names := make([]string, len(lines[line]))
			for j, n := range lines[line] {
				names[j] = "${" + n + "}"
			}
			return fmt.Sprintf("line %s: cannot unmarshal %s (the value of %s)", sub[1], sub[2], strings.Join(names, ", "))
		})
	}
	return &yaml.TypeError{Errors: msgs}
}

// commentStart is where a YAML comment begins on line (len(line) if it
// has none): a # at the start or after a space or tab, outside a quoted
// scalar. A quote opens a scalar only where a value starts (after ": ",
// "- ", "[", "{" or ","), so an apostrophe inside a plain value is text.
func commentStart(line []byte) int {
	var quote byte
	prev := byte(' ') // the last character outside a quote that is not a space
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '"' && c == '\\',
			quote == '\'' && c == '\'' && i+1 < len(line) && line[i+1] == '\'':
			i++ // an escaped character, or '' in single quotes
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case (c == '"' || c == '\'') && strings.IndexByte(" :-[{,", prev) >= 0:
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return i
		}
		if quote == 0 && c != ' ' && c != '\t' {
			prev = c
		}
	}
	return len(line)
}
