package core

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestValidateURI(t *testing.T) {
	t.Parallel()
	prod := AddressPolicy{}
	dev := AddressPolicy{Dev: true}
	allow := AddressPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	cases := []struct {
		p   AddressPolicy
		uri string
		ok  bool
	}{
		{prod, "https://example.com/hook", true},
		{prod, "http://example.com/hook", false},
		{prod, "/relative", false},
		{prod, "example.com/hook", false},
		{prod, "ftp://example.com", false},
		{prod, "https://user:pw@example.com/", false},
		{prod, "https://127.0.0.1/hook", false},
		{prod, "https://localhost/hook", false},
		{prod, "https://169.254.169.254/latest", false},
		{prod, "https://[::1]/", false},
		{prod, "https://10.1.2.3/", false},
		{allow, "https://10.1.2.3/", true},
		{dev, "http://127.0.0.1:3000/hook", true},
		{dev, "http://localhost:3000/hook", true},
		{dev, "http://[::1]:3000/hook", true}, // loopback, not the IPv4-compatible 0.0.0.1
		{dev, "http://[::]:3000/hook", false},
		{dev, "http://[::2]:3000/hook", false}, // IPv4-compatible 0.0.0.2
		{prod, "", false},
	}
	for _, c := range cases {
		err := c.p.ValidateURI("uri", c.uri)
		if (err == nil) != c.ok {
			t.Errorf("ValidateURI(%q, dev=%v) = %v, want ok=%v", c.uri, c.p.Dev, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "uri") {
			t.Errorf("error %q does not name the field", err)
		}
	}
}

// TestLegacyIPv4Hosts: hosts that C resolvers (inet_aton) read as IPv4
// addresses — decimal, octal, hex, shortened — and names with a trailing
// root dot are judged as the address or name they mean, not passed as host
// names for the dial guard alone to catch: each is a 400 naming the field,
// the private ones as private, the public ones asked for a.b.c.d.
func TestLegacyIPv4Hosts(t *testing.T) {
	t.Parallel()
	prod, dev := AddressPolicy{}, AddressPolicy{Dev: true}
	for _, c := range []struct {
		p    AddressPolicy
		uri  string
		ok   bool
		want string // in the error
	}{
		{prod, "https://2130706433/hook", false, "private, loopback or reserved address (127.0.0.1, written 2130706433)"},
		{prod, "https://0x7f000001/hook", false, "(127.0.0.1, written 0x7f000001)"},
		{prod, "https://0177.0.0.1/hook", false, "(127.0.0.1, written 0177.0.0.1)"},
		{prod, "https://127.1/hook", false, "(127.0.0.1, written 127.1)"},
		{prod, "https://127.000.000.001/hook", false, "(127.0.0.1, written 127.000.000.001)"},
		{prod, "https://0/hook", false, "(0.0.0.0, written 0)"},
		{prod, "https://2852039166/latest", false, "(169.254.169.254, written 2852039166)"},
		{prod, "https://0251.0376.0251.0376/latest", false, "(169.254.169.254, written"},
		{prod, "https://0xa9.0xfe.0xa9.0xfe/latest", false, "(169.254.169.254, written"},
		{prod, "https://169.254.43518/latest", false, "(169.254.169.254, written"},
		{prod, "https://10.0x10203/x", false, "(10.1.2.3, written"},
		{prod, "https://169.254.169.254./latest", false, "private, loopback or reserved address (169.254.169.254)"},
		{prod, "https://localhost./hook", false, "points at localhost"},
		{prod, "https://api.localhost./hook", false, "points at localhost"},
		{prod, "https://134744072/hook", false, `host "134744072" is the IPv4 address 8.8.8.8 in a legacy notation; write it as 8.8.8.8`},
		{dev, "http://127.1:3000/hook", false, "write it as 127.0.0.1"},
		{prod, "https://4294967296/hook", false, "neither a host name nor a valid IPv4 address"},
		{prod, "https://1.2.3.4.5/hook", false, "neither a host name nor a valid IPv4 address"},
		{prod, "https://1.256.3.4/hook", false, "neither a host name nor a valid IPv4 address"},
		{prod, "https://example.com./hook", true, ""},
		{prod, "https://1e100.net/hook", true, ""},
		{prod, "https://123.example/hook", true, ""},
		{prod, "https://0x.example/hook", true, ""},
		{prod, "https://08.example/hook", true, ""},
		{dev, "http://localhost.:3000/hook", true, ""},
	} {
		err := c.p.ValidateURI("uri", c.uri)
		if (err == nil) != c.ok {
			t.Errorf("ValidateURI(%q, dev=%v) = %v, want ok=%v", c.uri, c.p.Dev, err, c.ok)
			continue
		}
		if err != nil && (!strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "uri ")) {
			t.Errorf("ValidateURI(%q) = %q, want it to name the field and say %q", c.uri, err, c.want)
		}
	}
}

func TestAddrAllowedBlocksSpecialRanges(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "169.254.169.254", "0.0.0.0", "224.0.0.1", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::"} {
		if (AddressPolicy{}).AddrAllowed(netip.MustParseAddr(s)) {
			t.Errorf("%s allowed, want blocked", s)
		}
	}
	for _, s := range []string{"93.184.216.34", "2606:2800:220:1::1"} {
		if !(AddressPolicy{}).AddrAllowed(netip.MustParseAddr(s)) {
			t.Errorf("%s blocked, want allowed", s)
		}
	}
}

// TestTransitionAddresses (issue 13, defect 4): an IPv6 transition
// address is judged by the IPv4 address it embeds, in the API check and
// in AddrAllowed (which the dial guard calls); --allow-cidr and --dev
// apply to the embedded address too.
func TestTransitionAddresses(t *testing.T) {
	t.Parallel()
	allow := AddressPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	for _, tc := range []struct {
		addr string
		p    AddressPolicy
		ok   bool
	}{
		{"64:ff9b::a9fe:a9fe", AddressPolicy{}, false},                   // NAT64 → 169.254.169.254
		{"64:ff9b::5db8:d822", AddressPolicy{}, false},                   // NAT64 is refused whatever it embeds
		{"64:ff9b:1::a9fe:a9fe", AddressPolicy{}, false},                 // local-use NAT64
		{"2002:a9fe:a9fe::1", AddressPolicy{}, false},                    // 6to4 → 169.254.169.254
		{"2002:0a01:0203::1", AddressPolicy{}, false},                    // 6to4 → 10.1.2.3
		{"2002:0a01:0203::1", allow, true},                               // … allowed by --allow-cidr 10.1.0.0/16
		{"2002:5db8:d822::1", AddressPolicy{}, true},                     // 6to4 → 93.184.216.34
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", AddressPolicy{}, false}, // Teredo, client 127.0.0.1
		{"2001:0:a9fe:a9fe:8000:63bf:a247:27dd", AddressPolicy{}, false}, // Teredo, server 169.254.169.254
		{"2001:0:4136:e378:8000:63bf:a247:27dd", AddressPolicy{}, true},  // Teredo, public server and client
		{"::a9fe:a9fe", AddressPolicy{}, false},                          // IPv4-compatible
		{"::7f00:1", AddressPolicy{}, false},
		{"::ffff:0:a9fe:a9fe", AddressPolicy{}, false}, // IPv4-translated
		{"::ffff:0:7f00:1", AddressPolicy{Dev: true}, true},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := tc.p.AddrAllowed(a); got != tc.ok {
			t.Errorf("AddrAllowed(%s) = %v, want %v", tc.addr, got, tc.ok)
		}
		err := tc.p.ValidateURI("uri", "https://["+tc.addr+"]/hook")
		if (err == nil) != tc.ok {
			t.Errorf("ValidateURI(%s) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestWebhookConfigValidation(t *testing.T) {
	t.Parallel()
	p := AddressPolicy{}
	ok := &WebhookConfig{URIs: []string{"https://a.example/x"}, UserMetadata: json.RawMessage(`{"k":"v"}`)}
	// uris is optional (only user_metadata, for the registered webhooks).
	for _, c := range []*WebhookConfig{ok, {}, {UserMetadata: json.RawMessage(`{"k":"v"}`)}} {
		if err := p.ValidateWebhookConfig("webhook_config", c); err != nil {
			t.Fatal(err)
		}
	}
	bad := []*WebhookConfig{
		{Audience: "https://a.example"},
		{RateLimit: &RateLimit{PerSecond: 1}},
		{TracePropagation: true},
		{URIs: make([]string, 11)},
		{URIs: []string{"http://a.example/x"}},
		{URIs: []string{"https://a.example/x", "https://a.example/x"}},
		{URIs: []string{"https://a.example/x"}, UserMetadata: json.RawMessage(`[1]`)},
		{URIs: []string{"https://a.example/x"}, UserMetadata: json.RawMessage(`{"k":"` + strings.Repeat("x", 17<<10) + `"}`)},
	}
	for i, c := range bad {
		if err := p.ValidateWebhookConfig("webhook_config", c); err == nil || !IsInvalid(err) {
			t.Errorf("case %d: err = %v, want invalid argument", i, err)
		}
	}
}

// TestDynamicAudience (issue 13, defect 1): a configured audience is used
// only for a URI it names (the URI itself or its origin); anything else is
// refused at publish time and ignored at signing time, so every token's
// aud is a place it is delivered to.
func TestDynamicAudience(t *testing.T) {
	t.Parallel()
	uris := []string{"https://a.example/x", "https://b.example:8443/y"}
	for _, tc := range []struct {
		aud   string
		valid bool
		forA  string // the aud of the token sent to uris[0]
	}{
		{"", true, "https://a.example/x"},
		{"https://a.example/x", true, "https://a.example/x"},
		{"https://a.example", true, "https://a.example"},
		{"https://b.example:8443", true, "https://a.example/x"},
		{"https://b.example", false, "https://a.example/x"},
		{"https://a.example/", false, "https://a.example/x"},
		{"https://victim.example/hook", false, "https://a.example/x"},
		{"aud", false, "https://a.example/x"},
	} {
		c := &WebhookConfig{URIs: uris, Audience: tc.aud}
		err := AddressPolicy{}.ValidateWebhookConfig("webhook_config", c)
		if (err == nil) != tc.valid || (err != nil && !strings.Contains(err.Error(), "webhook_config.audience")) {
			t.Errorf("audience %q: validate = %v, want valid=%v", tc.aud, err, tc.valid)
		}
		if got := DynamicAudience(c, uris[0]); got != tc.forA {
			t.Errorf("audience %q: DynamicAudience = %q, want %q", tc.aud, got, tc.forA)
		}
	}
	if got := DynamicAudience(nil, uris[1]); got != uris[1] {
		t.Errorf("no config: %q", got)
	}
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	c, err := NewCatalog("acme.report_ready")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateSubscribedEvents([]string{"batch.succeeded", "acme.report_ready", "batch.cancelled"}); err != nil {
		t.Fatal(err)
	}
	err = c.ValidateSubscribedEvents([]string{"batch.done"})
	if err == nil || !strings.Contains(err.Error(), "batch.succeeded") {
		t.Fatalf("unknown type error should list valid values: %v", err)
	}
	if err := c.ValidateSubscribedEvents(nil); err == nil {
		t.Fatal("empty list accepted")
	}
	if _, err := NewCatalog("bad type!"); err == nil {
		t.Fatal("bad custom type accepted")
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	id := NewID()
	if len(id) != 36 || strings.Trim(id, base36) != "" {
		t.Fatalf("NewID = %q", id)
	}
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := NewMessageID(t1), NewMessageID(t1.Add(time.Millisecond))
	if !strings.HasPrefix(a, "msg_") || len(a) != 30 || a >= b {
		t.Fatalf("message ids not sortable: %q %q", a, b)
	}
}

func TestEnvelopeAndUserMetadata(t *testing.T) {
	t.Parallel()
	data, err := WithUserMetadata(json.RawMessage(`{"id":"batches/1"}`), json.RawMessage(`{"job":"n"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := Envelope("batch.succeeded", time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC), data)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-05T12:00:00Z","data":{"id":"batches/1","user_metadata":{"job":"n"}}}`
	if string(body) != want {
		t.Fatalf("envelope:\n got %s\nwant %s", body, want)
	}
}

// TestEnvelopeQuoting checks the envelope against json.Marshal's
// quoting of the type (plain ASCII written as it is, anything else
// escaped as before) and that a plain one costs one allocation.
func TestEnvelopeQuoting(t *testing.T) {
	at := time.Date(2026, 5, 5, 12, 0, 0, 123, time.FixedZone("x", 3600))
	for _, typ := range []string{"batch.succeeded", "a b", `q"uote`, `back\slash`, "<html>&", "tab\t", "caf\u00e9", "\u2028", "bad\xff", ""} {
		body, err := Envelope(typ, at, json.RawMessage(`{"k":1}`))
		if err != nil {
			t.Fatal(err)
		}
		q, _ := json.Marshal(typ)
		want := `{"type":` + string(q) + `,"version":"v1","timestamp":"2026-05-05T11:00:00Z","data":{"k":1}}`
		if string(body) != want {
			t.Errorf("type %q:\n got %s\nwant %s", typ, body, want)
		}
	}
	data := json.RawMessage(`{"id":"batches/1"}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = Envelope("batch.succeeded", at, data) }); n != 1 {
		t.Errorf("Envelope: %v allocations, want 1", n)
	}
}

func TestValidateModel(t *testing.T) {
	for _, ok := range []string{"gemini-2.5-flash", "models/veo-3.0-generate-001", "deep-research-pro-preview-12-2025", "a", strings.Repeat("m", MaxModelName)} {
		if err := ValidateModel("model", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "models/", "../x", "models/../x", "a/b", "-x", ".x", "x y", "gemini\u00e9", strings.Repeat("m", MaxModelName+1)} {
		if err := ValidateModel("model", bad); !IsInvalid(err) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

// TestValidateURIShape: a URI that is not well-formed — a space or control
// character anywhere (a trailing space was stored and sent as %20), a bad
// percent escape in the query, a host name with an empty label, a label
// starting or ending with a hyphen, a label over 63 bytes or a name over
// 253 — is refused naming the field, instead of failing at dial time;
// every well-formed spelling accepted before still is.
func TestValidateURIShape(t *testing.T) {
	t.Parallel()
	prod, dev := AddressPolicy{}, AddressPolicy{Dev: true}
	label63 := strings.Repeat("a", 63)
	host253 := strings.Join([]string{label63, label63, label63, strings.Repeat("b", 61)}, ".") // 63*3+61+3 = 253
	for _, uri := range []string{
		"https://example.com/hook",
		"https://EXAMPLE.com/Hook",
		"https://example.com",
		"https://example.com/h?",
		"https://example.com:8443/hook",
		"https://example.com./hook",
		"https://a.b-c.example.com/x_y/~z",
		"https://my_service.example/hook",
		"https://xn--bcher-kva.example/hook",
		"https://bücher.example/hook",
		"https://[2606:4700:4700::1111]/hook",
		"https://[2606:4700:4700::1111]:8443/hook?x=1",
		"https://example.com/a%20b/%E2%82%AC?q=a%20b&r=%2F&s=a+b",
		"https://example.com/h?q=%7b%7D",
		"https://" + label63 + ".com/",
		"https://" + host253 + "/",
		"https://1.1.1.1/hook",
	} {
		if err := prod.ValidateURI("uri", uri); err != nil {
			t.Errorf("ValidateURI(%q) = %v, want ok", uri, err)
		}
	}
	for _, uri := range []string{"http://localhost:3000/hook", "http://my_app:8080/h", "http://127.0.0.1/h"} {
		if err := dev.ValidateURI("uri", uri); err != nil {
			t.Errorf("dev: ValidateURI(%q) = %v, want ok", uri, err)
		}
	}
	for _, c := range []struct{ uri, want string }{
		{"https://example.com/h ", "spaces or control characters"},
		{"https://example.com/a b", "spaces or control characters"},
		{"https://example.com/h?q=a b", "spaces or control characters"},
		{"https://example.com/h\t", "spaces or control characters"},
		{" https://example.com/h", "spaces or control characters"},
		{`https://example.com/"><script>`, `must not contain '"' (found at offset 20); percent-encode it as %22`},
		{"https://example.com/a<b", "percent-encode it as %3C"},
		{"https://example.com/a\\b", "percent-encode it as %5C"},
		{"https://example.com/h?q={x}", "percent-encode it as %7B"},
		{"https://example.com/h?q=a|b", "percent-encode it as %7C"},
		{"https://example.com/a^b`c", "percent-encode it as %5E"},
		{"https://example.com/h?q=%zz", "two hex digits"},
		{"https://example.com/h?q=100%", "two hex digits"},
		{"https://example.com/h?q=%4", "two hex digits"},
		{"https://example..com/h", "empty label"},
		{"https://.example.com/h", "empty label"},
		{"https://example.com../h", "empty label"},
		{"https://-bad-.com/h", "hyphen"},
		{"https://bad-.example.com/h", "hyphen"},
		{"https://ex!ample.com/h", "contains '!'"},
		{"https://ex$ample.com/h", "contains '$'"},
		{"https://" + strings.Repeat("a", 64) + ".com/", "label longer than 63 bytes"},
		{"https://" + host253 + "c/", "longer than 253 bytes"},
		{"https://" + host253 + ".com/", "longer than 253 bytes"},
	} {
		err := prod.ValidateURI("webhook_config.uris[0]", c.uri)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "webhook_config.uris[0]") {
			t.Errorf("ValidateURI(%q) = %v, want an error naming the field and saying %q", c.uri, err, c.want)
		}
	}
}

// --dev opens loopback and private ranges, not cloud metadata: AWS's IPv6
// metadata address fd00:ec2::254 lies in the ULA range --dev opens, and
// was reachable with --dev while 169.254.169.254 was refused. Both are
// refused with --dev, in the API check and in AddrAllowed (the dial
// guard); an explicit --allow-cidr still opens them.
func TestDevKeepsMetadataRefused(t *testing.T) {
	t.Parallel()
	dev := AddressPolicy{Dev: true}
	devAllow := AddressPolicy{Dev: true, Allow: []netip.Prefix{netip.MustParsePrefix("fd00:ec2::254/128")}}
	for _, tc := range []struct {
		p    AddressPolicy
		addr string
		ok   bool
	}{
		{dev, "169.254.169.254", false},
		{dev, "fd00:ec2::254", false},
		{dev, "fd00:ec2::253", true}, // the rest of the ULA range stays open with --dev
		{dev, "fd00::1", true},
		{dev, "10.0.0.1", true},
		{devAllow, "fd00:ec2::254", true},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := tc.p.AddrAllowed(a); got != tc.ok {
			t.Errorf("AddrAllowed(%s, dev, allow %v) = %v, want %v", tc.addr, tc.p.Allow, got, tc.ok)
		}
		host := tc.addr
		if a.Is6() {
			host = "[" + host + "]"
		}
		err := tc.p.ValidateURI("uri", "http://"+host+"/latest/meta-data/")
		if (err == nil) != tc.ok {
			t.Errorf("ValidateURI(http://%s/…, dev, allow %v) = %v, want ok=%v", host, tc.p.Allow, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "--dev") {
			t.Errorf("ValidateURI(http://%s/…) with --dev suggests --dev: %v", host, err)
		}
	}
	if (AddressPolicy{Dev: true}).AddrAllowed(netip.MustParseAddr("fd00:ec2::254%eth0")) {
		t.Errorf("AddrAllowed(fd00:ec2::254%%eth0, dev) = true, want false")
	}
}
