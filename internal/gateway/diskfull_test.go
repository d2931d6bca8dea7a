//go:build linux

package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/disktest"
)

// TestInboxDiskFull: the SQLite inbox lives on a 16 MiB tmpfs that fills
// up during intake. Events it could not store are answered 503
// UNAVAILABLE (never a 2xx), /readyz answers 503 and says why; once
// space returns, intake resumes without a restart, and every event that
// got a 2xx reaches the sink.
func TestInboxDiskFull(t *testing.T) {
	t.Parallel()
	dir := disktest.Tmpfs(t, "16m")

	rec := newRecorder(t)
	secretText, secret := mustSecret(t)
	// Registered after the mount's cleanup, so it runs first: the
	// gateway closes its inbox before the tmpfs goes.
	gw := startGateway(t, Config{DataDir: dir, Sources: []SourceConfig{{Name: "billing",
		Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks:  []SinkConfig{{Name: "api", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}}}}}})
	client := gw.srv.Client()
	pad := strings.Repeat("x", 32<<10)
	var accepted []string
	n := 0
	send := func() (int, string) {
		n++
		id := fmt.Sprintf("msg_disk_%d", n)
		body := fmt.Appendf(nil, `{"type":"invoice.paid","data":{"n":%d,"pad":%q}}`, n, pad)
		code, b := post(t, client, gw.srv.URL+"/hooks/billing", secret, id, time.Now(), body)
		if code/100 == 2 {
			accepted = append(accepted, id)
		}
		return code, b
	}
	readyz := func() (int, string) {
		resp, err := client.Get(gw.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 20 {
		if code, b := send(); code != 200 {
			t.Fatalf("intake with room: %d %s", code, b)
		}
	}
	if code, b := readyz(); code != 200 {
		t.Fatalf("/readyz with room: %d %s", code, b)
	}

	// Fill the filesystem.
	filler := disktest.Fill(t, dir)
	deadline := time.Now().Add(60 * time.Second)
	refused := 0
	for refused < 5 {
		code, b := send()
		switch {
		case code == http.StatusServiceUnavailable:
			var env struct {
				Error struct{ Status string } `json:"error"`
			}
			if json.Unmarshal([]byte(b), &env) != nil || env.Error.Status != "UNAVAILABLE" {
				t.Fatalf("intake on a full disk: %d %s; want the UNAVAILABLE error envelope", code, b)
			}
			refused++
		case code != 200:
			t.Fatalf("intake on a full disk: %d %s; want 503 UNAVAILABLE", code, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("intake kept accepting on a full disk (%d refused)", refused)
		}
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "disk full") {
		t.Errorf("/readyz on a full disk: %d %s; want 503 saying why", code, body)
	}

	// Space returns: intake resumes by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		code, _ := send()
		rc, _ := readyz()
		if code == 200 && rc == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered after space returned: intake %d, readyz %d", code, rc)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, 90*time.Second, "every acknowledged event at the sink", func() bool {
		got := rec.snapshot()
		for _, id := range accepted {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	t.Logf("%d of %d events acknowledged (the rest refused with 503), all forwarded", len(accepted), n)
}
