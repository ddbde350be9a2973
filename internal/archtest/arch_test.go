package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "spelt.dev/spelt/"

// allowed maps a layer to the project packages it may import (besides internal/...
// helpers, which any layer may use, and itself).
var allowed = map[string][]string{
	"eventlog":    {},
	"commands":    {"eventlog", "sql/gen/writedb"},
	"projections": {"eventlog", "sql/gen/projdb"},
	"queries":     {"sql/gen/readdb"},
	// http uses eventlog for its types only (Position, Origin), as ARCHITECTURE.md allows.
	"http": {"commands", "queries", "eventlog"},
}

func TestPackageBoundaries(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, module)
		layer := strings.SplitN(rel, "/", 2)[0]
		may, ok := allowed[layer]
		if !ok {
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if strings.HasPrefix(dep, "internal/") || strings.HasPrefix(dep, layer+"/") || dep == layer {
				continue
			}
			ok := false
			for _, a := range may {
				if dep == a || strings.HasPrefix(dep, a+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s: layer %s may import only %v", rel, dep, layer, may)
			}
		}
	}
	if checked < len(allowed) {
		t.Errorf("checked %d layers, want at least %d", checked, len(allowed))
	}
}
