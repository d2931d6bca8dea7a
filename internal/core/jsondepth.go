package core

// Nesting limits of delivered JSON (docs/design.md, "How deep event data
// may nest").
const (
	// MaxPayloadDepth is the deepest a delivery's payload (or a dynamic
	// delivery's JWT claims) nests, in levels of objects and arrays, the
	// payload object itself being the first. Receivers' JSON parsers
	// refuse deeper documents — .NET's System.Text.Json and Json.NET by
	// default beyond 64, Ruby's JSON beyond 100, Rust's serde_json beyond
	// 128 — so an event nested deeper would be accepted here and then
	// fail at receivers, attempt after attempt.
	MaxPayloadDepth = 64
	// MaxDataDepth is how deep an event's data may nest, its own object
	// being level 1: the payload holds data at its level 2
	// ({"type": …, "data": {…}}).
	MaxDataDepth = MaxPayloadDepth - 1
	// MaxUserMetadataDepth is how deep a webhook_config's user_metadata
	// may nest: it is delivered inside data, as data.user_metadata.
	MaxUserMetadataDepth = MaxDataDepth - 1
)

// DepthExceeded returns the offset in raw, well-formed JSON, of the first
// object or array that opens more than limit levels deep, or -1 if none
// does.
func DepthExceeded(raw []byte, limit int) int {
	depth := 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			if depth++; depth > limit {
				return i
			}
		case '}', ']':
			depth--
		}
	}
	return -1
}

// CheckDepth refuses raw, well-formed JSON that nests deeper than limit
// levels, naming field and where in it the limit is passed.
func CheckDepth(field string, raw []byte, limit int) error {
	if at := DepthExceeded(raw, limit); at >= 0 {
		return Invalid(field, "%s nests deeper than %d levels of objects and arrays (the level %d opens at byte %d of %s): receivers' JSON parsers refuse a payload nested more than %d levels deep",
			field, limit, limit+1, at, field, MaxPayloadDepth)
	}
	return nil
}
