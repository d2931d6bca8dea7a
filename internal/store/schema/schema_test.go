package schema

import (
	"testing"
	"testing/fstest"
)

func TestLoadOrdersByName(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"m/0002_jobs.sql": {Data: []byte("B")},
		"m/0001_init.sql": {Data: []byte("A")},
		"m/README.md":     {Data: []byte("x")},
	}
	ms, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != "0001_init" || ms[0].SQL != "A" || ms[1].Version != "0002_jobs" {
		t.Fatalf("Load = %+v", ms)
	}
}
