// Package archtest holds the import-graph rules of docs/design.md as tests,
// so that the layout cannot drift: it reads the module's packages with
// `go list -deps -json` and their sources with go/parser.
package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/longhook/longhook"

// pkg is what go list reports of one package.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
	Standard   bool
}

// load lists every package of the module and every dependency (once per
// test binary: go list takes seconds).
func load(t *testing.T) map[string]*pkg {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipped: no go command in PATH to list packages")
	}
	pkgs, err := listed()
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

var listed = sync.OnceValues(func() (map[string]*pkg, error) {
	cmd := exec.Command("go", "list", "-deps", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			return pkgs, nil
		} else if err != nil {
			return nil, err
		}
		pkgs[p.ImportPath] = &p
	}
})

// under reports whether path is root or a package below it.
func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// ours lists the module's packages under root.
func ours(pkgs map[string]*pkg, root string) []*pkg {
	var out []*pkg
	for path, p := range pkgs {
		if under(path, module+"/"+root) {
			out = append(out, p)
		}
	}
	return out
}

// The edges docs/design.md forbids: the jobs domain and the gateway do not
// reach into the HTTP layer (api) or the delivery engine.
func TestForbiddenImports(t *testing.T) {
	t.Parallel()
	pkgs := load(t)
	rules := []struct {
		from      string
		forbidden []string
	}{
		{"internal/jobs", []string{"internal/api", "internal/engine"}},
		{"internal/gateway", []string{"internal/api", "internal/engine"}},
		{"internal/relay", []string{"internal/api", "internal/gateway"}},
	}
	for _, r := range rules {
		ps := ours(pkgs, r.from)
		if len(ps) == 0 {
			t.Errorf("no package under %s: update the rule", r.from)
		}
		for _, p := range ps {
			for _, dep := range p.Deps {
				for _, f := range r.forbidden {
					if under(dep, module+"/"+f) {
						t.Errorf("%s imports %s (directly or not): forbidden by docs/design.md", p.ImportPath, dep)
					}
				}
			}
		}
	}
}

// The public webhook package and the domain core import only the standard
// library.
func TestStandardLibraryOnly(t *testing.T) {
	t.Parallel()
	pkgs := load(t)
	for _, root := range []string{"webhook", "internal/core"} {
		for _, p := range ours(pkgs, root) {
			for _, dep := range p.Deps {
				if d := pkgs[dep]; d == nil || !d.Standard {
					t.Errorf("%s depends on %s, which is not in the standard library", p.ImportPath, dep)
				}
			}
		}
	}
}

// Only internal/api registers the HTTP handlers of serve (and internal/cli
// wires the server): no other package serve links touches a ServeMux or
// the default mux — but internal/console, which api mounts at /console/
// and which routes its own pages beneath that prefix (docs/design.md,
// "Layout"). The gateway's own server (`longhook gateway`) is not serve's
// and may.
func TestOnlyAPIRegistersServeRoutes(t *testing.T) {
	t.Parallel()
	pkgs := load(t)
	serve := map[string]bool{}
	for _, dep := range append(pkgs[module+"/internal/cli"].Deps, module+"/internal/cli") {
		if under(dep, module) && !under(dep, module+"/internal/gateway") {
			serve[dep] = true
		}
	}
	allowed := []string{module + "/internal/api", module + "/internal/cli", module + "/internal/console"}
	for path := range serve {
		if slices.Contains(allowed, path) {
			continue
		}
		p := pkgs[path]
		for _, name := range p.GoFiles {
			for _, use := range muxUses(t, filepath.Join(p.Dir, name)) {
				t.Errorf("%s: %s: only internal/api registers serve's routes", path, use)
			}
		}
	}
	if len(serve) < 5 {
		t.Fatalf("found only %d serve packages: the dependency walk is broken", len(serve))
	}
}

// muxUses returns the positions where a file refers to net/http's route
// registration: http.ServeMux, http.NewServeMux, http.Handle,
// http.HandleFunc or http.DefaultServeMux.
func muxUses(t *testing.T, file string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	httpName := ""
	for _, imp := range f.Imports {
		if imp.Path.Value == `"net/http"` {
			httpName = "http"
			if imp.Name != nil {
				httpName = imp.Name.Name
			}
		}
	}
	if httpName == "" {
		return nil
	}
	var uses []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && x.Name == httpName {
			switch sel.Sel.Name {
			case "ServeMux", "NewServeMux", "Handle", "HandleFunc", "DefaultServeMux":
				uses = append(uses, fset.Position(sel.Pos()).String()+" uses http."+sel.Sel.Name)
			}
		}
		return true
	})
	return uses
}

// muxUses sees a registration however net/http is imported, and ignores
// handlers that only implement http.Handler.
func TestMuxUses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, src string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bad := write("bad.go", "package x\nimport h \"net/http\"\nfunc f() { m := h.NewServeMux(); m.HandleFunc(\"/\", nil) }\n")
	if uses := muxUses(t, bad); len(uses) != 1 || !strings.Contains(uses[0], "http.NewServeMux") {
		t.Errorf("bad.go: %v", uses)
	}
	good := write("good.go", "package x\nimport \"net/http\"\ntype H struct{}\nfunc (H) ServeHTTP(http.ResponseWriter, *http.Request) {}\n")
	if uses := muxUses(t, good); len(uses) != 0 {
		t.Errorf("good.go: %v", uses)
	}
}
