package core

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Limits of docs/contract.md §5.
const (
	MaxDynamicURIs       = 10
	MaxUserMetadataBytes = 16 << 10
	MaxWebhookNameLength = 256
	MaxURILength         = 2048
	MaxSubscribedEvents  = 64
	MaxIdempotencyKeyLen = 256
	MaxOldSigningSecrets = 10
	MaxEventDataBytes    = 256 << 10
)

// AddressPolicy decides which destinations deliveries may reach (docs/contract.md
// §8). The zero value is the production default: https only, public
// addresses only.
type AddressPolicy struct {
	// Dev allows plain http and loopback/private destinations.
	Dev bool
	// Allow lists CIDRs that are reachable even though they are private.
	Allow []netip.Prefix
}

var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",         // "this" network, unspecified
		"10.0.0.0/8",        // RFC 1918
		"100.64.0.0/10",     // CGNAT
		"127.0.0.0/8",       // loopback
		"169.254.0.0/16",    // link-local, cloud metadata
		"172.16.0.0/12",     // RFC 1918
		"192.0.0.0/24",      // IETF protocol assignments
		"192.168.0.0/16",    // RFC 1918
		"198.18.0.0/15",     // benchmarking
		"224.0.0.0/4",       // multicast
		"240.0.0.0/4",       // reserved, broadcast
		"::/128",            // unspecified
		"::1/128",           // loopback
		"fc00::/7",          // ULA
		"fe80::/10",         // link-local
		"ff00::/8",          // multicast
		"fd00:ec2::254/128", // AWS metadata (inside ULA; refused with Dev too: awsMetadataV6)
		"64:ff9b::/96",      // NAT64 can reach IPv4-private space
		"64:ff9b:1::/48",    // local-use NAT64 (RFC 8215): operator-defined mapping
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// transitionPrefixes are IPv6 ranges that carry an IPv4 address; where a
// relay or translator for them exists, dialing one reaches that IPv4
// address, so it must pass the same policy.
var (
	sixToFour     = netip.MustParsePrefix("2002::/16") // 6to4: IPv4 in bits 16-47
	teredo        = netip.MustParsePrefix("2001::/32") // server IPv4 in bits 32-63, client IPv4 inverted in 96-127
	ipv4Compat    = netip.MustParsePrefix("::/96")     // deprecated IPv4-compatible
	ipv4Translate = netip.MustParsePrefix("::ffff:0:0:0/96")
	ipv6Loopback  = netip.IPv6Loopback()
	// awsMetadataV6 is EC2's IPv6 instance metadata service. It sits
	// inside the ULA range that --dev opens (fc00::/7), yet --dev must
	// keep it refused as it keeps 169.254.169.254 (link-local, which --dev
	// never opens): a dev server on a cloud host would hand its instance
	// credentials to whoever may create a webhook.
	awsMetadataV6 = netip.MustParseAddr("fd00:ec2::254")
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 transition address leads
// to (none for other addresses).
func embeddedIPv4(a netip.Addr) []netip.Addr {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	switch {
	case sixToFour.Contains(a):
		return []netip.Addr{v4(2)}
	case teredo.Contains(a):
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return []netip.Addr{v4(4), client}
	case ipv4Compat.Contains(a) && a.Compare(ipv6Loopback) > 0, ipv4Translate.Contains(a):
		// ::/96 less :: and ::1 (RFC 4291 §2.5.5.1): those two are the
		// unspecified and the loopback address, judged as themselves —
		// not as 0.0.0.0 and 0.0.0.1, which made http://[::1] refused
		// even with --dev.
		return []netip.Addr{v4(12)}
	}
	return nil
}

// AddrAllowed reports whether a resolved destination address may be dialed.
// An IPv6 transition address (6to4, Teredo, IPv4-compatible or
// -translated) is allowed only if the IPv4 addresses it embeds are; the
// NAT64 prefixes are refused (the API check and the dial guard both call
// this). Dev opens loopback and private ranges but not the cloud metadata
// addresses; only Allow (--allow-cidr) opens those.
func (p AddressPolicy) AddrAllowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, pre := range p.Allow {
		if pre.Contains(a) {
			return true
		}
	}
	for _, v4 := range embeddedIPv4(a) {
		if !p.AddrAllowed(v4) {
			return false
		}
	}
	if p.Dev && (a.IsLoopback() || a.IsPrivate()) && a.WithZone("") != awsMetadataV6 {
		return true
	}
	if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsMulticast() {
		return false
	}
	for _, pre := range blockedPrefixes {
		if pre.Contains(a) {
			return false
		}
	}
	return true
}

// uriExcluded are the printable ASCII characters RFC 3986 allows nowhere
// in a URI (section 2: neither reserved nor unreserved), other than the
// space, which ValidateURI refuses with control characters.
const uriExcluded = "\"<>\\^`{|}"

// ValidateURI checks a destination URI for field (e.g. "uri",
// "webhook_config.uris[0]"): absolute, https (http only in dev mode), no
// spaces, control characters or characters RFC 3986 excludes such as "
// and < (percent-encode them), valid percent
// escapes, a host, no credentials, and — when the host is an IP literal —
// an allowed address, otherwise a well-formed host name (hostName). Host
// names are checked again at dial time on the resolved IP.
func (p AddressPolicy) ValidateURI(field, raw string) error {
	if raw == "" {
		return Invalid(field, "%s is required", field)
	}
	if len(raw) > MaxURILength {
		return Invalid(field, "%s is longer than %d characters", field, MaxURILength)
	}
	if i := strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		// url.Parse refuses control characters but takes a space, and a
		// trailing one was stored and sent as %20.
		return Invalid(field, "%s must not contain spaces or control characters (found %q at offset %d); percent-encode them, e.g. %%20", field, raw[i], i)
	}
	if i := strings.IndexAny(raw, uriExcluded); i >= 0 {
		// url.Parse takes them and the sender wrote them into the
		// request line as they were; RFC 3986 has them percent-encoded.
		return Invalid(field, "%s must not contain %q (found at offset %d); percent-encode it as %%%02X", field, raw[i], i, raw[i])
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return Invalid(field, "%s must be an absolute URL such as https://example.com/hook", field)
	}
	if !validEscapes(u.RawQuery) {
		// url.Parse checks the escapes of the path, not of the query.
		return Invalid(field, "%s has a %% in its query that is not followed by two hex digits; write a %% as %%25", field)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !p.Dev {
			return Invalid(field, "%s must use https (plain http is allowed only with serve --dev)", field)
		}
	default:
		return Invalid(field, "%s must use https, not %q", field, u.Scheme)
	}
	if u.User != nil {
		return Invalid(field, "%s must not contain credentials", field)
	}
	if u.Fragment != "" {
		return Invalid(field, "%s must not contain a fragment", field)
	}
	if port := u.Port(); port != "" {
		// url.Parse takes any run of digits; no dial could use 0 or 99999.
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Invalid(field, "%s has port %s; a port is 1 to 65535", field, port)
		}
	}
	// A fully qualified name's root dot ("localhost.", "10.0.0.1.") names
	// the same host as without it.
	host := strings.TrimSuffix(u.Hostname(), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.AddrAllowed(a) {
			return Invalid(field, "%s points at a private, loopback or reserved address (%s); %s", field, host, p.openHint())
		}
	} else if a, numeric, ok := legacyIPv4(host); numeric {
		// "2130706433", "0x7f.1", "0177.0.0.1": C resolvers (inet_aton) read
		// these as IPv4 addresses, so they are judged as what they mean, and
		// refused either way: the address has one spelling.
		switch {
		case !ok:
			return Invalid(field, "%s host %q is neither a host name nor a valid IPv4 address", field, host)
		case !p.AddrAllowed(a):
			return Invalid(field, "%s points at a private, loopback or reserved address (%s, written %s); %s", field, a, host, p.openHint())
		default:
			return Invalid(field, "%s host %q is the IPv4 address %s in a legacy notation; write it as %s", field, host, a, a)
		}
	} else if err := hostName(host); err != "" {
		return Invalid(field, "%s host %q %s", field, host, err)
	} else if !p.Dev && (strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost")) {
		return Invalid(field, "%s points at localhost; use --dev for local targets", field)
	}
	return nil
}

// openHint says how to reach a refused address: --dev does not open what
// it refuses (link-local, cloud metadata, reserved ranges).
func (p AddressPolicy) openHint() string {
	if p.Dev {
		return "allow it with --allow-cidr"
	}
	return "allow it with --allow-cidr or use --dev"
}

// Limits of a DNS host name (RFC 1035 §2.3.4; RFC 1123 §2.1).
const (
	maxHostName  = 253
	maxHostLabel = 63
)

// hostName checks host (a name, not an IP literal, without its root dot)
// as a DNS name: at most 253 bytes, of dot-separated labels each 1 to 63
// bytes of letters, digits, hyphens and underscores (container and service
// names use them), neither starting nor ending with a hyphen. Bytes beyond
// ASCII are let through, for internationalized names in Unicode (their
// punycode "xn--" form is plain ASCII). It returns what is wrong, or "".
func hostName(host string) string {
	if len(host) > maxHostName {
		return "is longer than " + itoa(maxHostName) + " bytes"
	}
	for _, l := range strings.Split(host, ".") {
		switch {
		case l == "":
			return "has an empty label"
		case len(l) > maxHostLabel:
			return "has a label longer than " + itoa(maxHostLabel) + " bytes"
		case l[0] == '-' || l[len(l)-1] == '-':
			return "has a label that starts or ends with a hyphen"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if c < 0x80 && c != '-' && c != '_' && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				return "contains " + strconv.QuoteRune(rune(c)) + "; a host name holds letters, digits, hyphens and dots"
			}
		}
	}
	return ""
}

// validEscapes reports whether every % of s starts a %XX escape.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		i += 2
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// legacyIPv4 reads host as inet_aton does: one to four dot-separated
// numbers, each decimal, octal (leading 0) or hex (0x), the last filling
// the remaining bytes ("127.1" is 127.0.0.1, "2130706433" too). numeric
// reports that every label is such a number (no DNS name is: a top-level
// domain is never all digits); ok that the numbers fit an address.
func legacyIPv4(host string) (a netip.Addr, numeric, ok bool) {
	labels := strings.Split(host, ".")
	vals := make([]uint64, len(labels))
	for i, l := range labels {
		v, isNum := legacyNumber(l)
		if !isNum {
			return netip.Addr{}, false, false
		}
		vals[i] = v
	}
	if len(vals) > 4 {
		return netip.Addr{}, true, false
	}
	var n uint64
	for _, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, true, false
		}
		n = n<<8 | v
	}
	rest := uint(8 * (5 - len(vals))) // bits the last number fills
	last := vals[len(vals)-1]
	if last >= 1<<rest {
		return netip.Addr{}, true, false
	}
	n = n<<rest | last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true, true
}

// legacyNumber parses one inet_aton number; isNum is false for anything
// else (a value too large for 32 bits is still a number, returned as
// 1<<32).
func legacyNumber(s string) (v uint64, isNum bool) {
	base, digits := uint64(10), s
	switch {
	case len(s) > 1 && (s[:2] == "0x" || s[:2] == "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	if digits == "" {
		return 0, base == 16 // "0x" is 0 to inet_aton; "" is no number
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		if v = v*base + d; v > 1<<32 {
			v = 1 << 32
		}
	}
	return v, true
}

// ValidateWebhookConfig checks a per-job webhook_config (docs/contract.md §5).
func (p AddressPolicy) ValidateWebhookConfig(field string, c *WebhookConfig) error {
	if c == nil {
		return nil
	}
	if len(c.URIs) == 0 || len(c.URIs) > MaxDynamicURIs {
		return Invalid(field+".uris", "%s.uris must hold 1 to %d URIs", field, MaxDynamicURIs)
	}
	seen := map[string]bool{}
	for i, u := range c.URIs {
		f := field + ".uris[" + itoa(i) + "]"
		if err := p.ValidateURI(f, u); err != nil {
			return err
		}
		if seen[u] {
			return Invalid(f, "%s repeats %q", f, u)
		}
		seen[u] = true
	}
	if len(c.UserMetadata) > 0 {
		if len(c.UserMetadata) > MaxUserMetadataBytes {
			return Invalid(field+".user_metadata", "%s.user_metadata is larger than %d bytes", field, MaxUserMetadataBytes)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(c.UserMetadata, &m); err != nil || m == nil {
			return Invalid(field+".user_metadata", "%s.user_metadata must be a JSON object", field)
		}
	}
	if len(c.Audience) > MaxURILength {
		return Invalid(field+".audience", "%s.audience is too long", field)
	}
	if c.Audience != "" && !slices.ContainsFunc(c.URIs, func(u string) bool { return audienceNames(c.Audience, u) }) {
		return Invalid(field+".audience", "%s.audience must be one of the uris or the origin (scheme://host[:port]) of one", field)
	}
	if c.RateLimit != nil {
		return c.RateLimit.Validate(field + ".rate_limit")
	}
	return nil
}

// DynamicAudience returns the JWT "aud" of a dynamic delivery to uri: the
// configured audience when it names uri or uri's origin, otherwise uri
// itself. A token's audience is therefore always a place it is actually
// delivered to, so a publisher cannot mint tokens for another receiver and
// replay them there (a stored event from before the audience check keeps
// its URI as audience).
func DynamicAudience(c *WebhookConfig, uri string) string {
	if c != nil && c.Audience != "" && audienceNames(c.Audience, uri) {
		return c.Audience
	}
	return uri
}

// audienceNames reports whether aud is uri or uri's origin.
func audienceNames(aud, uri string) bool {
	if aud == uri {
		return true
	}
	u, err := url.Parse(uri)
	return err == nil && u.Scheme != "" && u.Host != "" && aud == u.Scheme+"://"+u.Host
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// MaxModelName is the longest model (or agent) name accepted.
const MaxModelName = 128

// ValidateModel checks a model or agent name ("gemini-2.5-flash",
// "models/veo-3.0-generate-001"): 1–128 letters, digits, '-', '.' or '_',
// starting with a letter or digit, after an optional "models/". Names are
// stored and echoed in resource names and events, so nothing that could
// read as a path (no '/', no "..") or run on without bound is kept.
func ValidateModel(field, name string) error {
	name = strings.TrimPrefix(name, "models/")
	if name == "" || len(name) > MaxModelName {
		return Invalid(field, "%s must be a model name of 1 to %d characters", field, MaxModelName)
	}
	for i := range len(name) {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '.' && c != '_') {
			return Invalid(field, "%s %q is not a model name (letters, digits, '-', '.' and '_', starting with a letter or digit)", field, name)
		}
	}
	return nil
}
