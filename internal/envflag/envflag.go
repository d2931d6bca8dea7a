// Package envflag is the flag set of every longhook command. Each flag
// falls back to one environment variable named by one rule, Name:
// --data-dir → LONGHOOK_DATA_DIR. A variable that an older version read
// under another name keeps working as a deprecated alias (Alias), and the
// command warns about it once, naming the new variable.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrUsage marks a command-line mistake (an unknown flag, a bad flag
// value, a stray argument): the CLI exits 2.
var ErrUsage = errors.New("usage")

// ErrConfig marks a bad environment value: the command line may be fine,
// but the start is refused all the same, with exit code 2.
var ErrConfig = errors.New("configuration error")

// Name maps a flag name to its environment variable: data-dir →
// LONGHOOK_DATA_DIR.
func Name(flagName string) string {
	return "LONGHOOK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Deprecation is a deprecated variable that was set and used.
type Deprecation struct {
	Old, New string
}

// String is the one-line warning.
func (d Deprecation) String() string {
	return fmt.Sprintf("%s is deprecated and will be removed: set %s instead", d.Old, d.New)
}

// FlagSet is a flag.FlagSet whose flags fall back to their variables.
type FlagSet struct {
	*flag.FlagSet
	getenv     func(string) string
	aliases    map[string]string // flag name → deprecated variable
	annotated  bool              // usage strings name their variables
	deprecated []Deprecation
}

// New returns an empty FlagSet named name that reads variables with
// getenv and prints usage to output.
func New(name string, getenv func(string) string, output io.Writer) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &FlagSet{FlagSet: fs, getenv: getenv, aliases: map[string]string{}}
}

// Alias makes the variable old a deprecated name of flagName's variable:
// read when Name(flagName) is not set, reported by Deprecated.
func (fs *FlagSet) Alias(flagName, old string) {
	fs.aliases[flagName] = old
}

// Parse parses args, then fills every flag not given on the command line
// from its variable.
func (fs *FlagSet) Parse(args []string) error {
	if err := fs.ParseOnly(args); err != nil {
		return err
	}
	return fs.FillFromEnv()
}

// ParseOnly parses args without the environment fallback, which
// FillFromEnv applies once all arguments are parsed. A mistake wraps
// ErrUsage; -h returns flag.ErrHelp.
func (fs *FlagSet) ParseOnly(args []string) error {
	if !fs.annotated {
		fs.annotated = true
		fs.VisitAll(func(f *flag.Flag) {
			f.Usage += fmt.Sprintf(" [$%s]", Name(f.Name))
		})
	}
	if err := fs.FlagSet.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v%s", ErrUsage, err, fs.flagHint(err))
	}
	return nil
}

// flagHint names the flag an unknown one was probably meant to be:
// "-event" → ` (did you mean "--events"?)`; "" for any other error.
func (fs *FlagSet) flagHint(err error) string {
	const unknown = "flag provided but not defined: -"
	msg := err.Error()
	i := strings.Index(msg, unknown)
	if i < 0 {
		return ""
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return strings.Replace(DidYouMean(strings.TrimLeft(msg[i+len(unknown):], "-"), names), `"`, `"--`, 1)
}

// Describe makes -h (and a flag mistake) open with the command line and
// what the command does, then list the flags, instead of Go's bare "Usage
// of NAME:". what may span lines (examples); "" leaves it out.
func (fs *FlagSet) Describe(synopsis, what string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\n", synopsis)
		if what != "" {
			fmt.Fprintf(w, "%s\n\n", what)
		}
		fmt.Fprintln(w, "Flags:")
		fs.PrintDefaults()
	}
}

// FillFromEnv sets every flag not given on the command line from its
// variable (or its deprecated alias). A value the flag refuses wraps
// ErrConfig and names the variable.
func (fs *FlagSet) FillFromEnv() error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := Name(f.Name)
		v := fs.getenv(name)
		if old, ok := fs.aliases[f.Name]; ok && v == "" {
			if v = fs.getenv(old); v != "" {
				fs.deprecated = append(fs.deprecated, Deprecation{Old: old, New: name})
				name = old
			}
		}
		if v == "" {
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = fmt.Errorf("%w: %s=%q is not a valid value for --%s: %v", ErrConfig, name, v, f.Name, e)
		}
	})
	return err
}

// Deprecated returns the deprecated variables FillFromEnv used.
func (fs *FlagSet) Deprecated() []Deprecation {
	return fs.deprecated
}
