package api

import "encoding/json"

// fields holds the raw JSON values of the three members a comment body
// may carry; other members are ignored, as the Flask app did.
type fields struct {
	vals [3]json.RawMessage
	has  [3]bool
}

var fieldNames = [3]string{"email", "comment", "content_id"}

// set keeps v as the member named name (a []byte: compared, not converted,
// so the scan allocates nothing).
func (f *fields) set(name []byte, v json.RawMessage) {
	for i, n := range fieldNames {
		if string(name) == n {
			f.vals[i], f.has[i] = v, true
		}
	}
}

func (f *fields) get(name string) (json.RawMessage, bool) {
	for i, n := range fieldNames {
		if n == name {
			return f.vals[i], f.has[i]
		}
	}
	return nil, false
}

// scanFlatObject reads the body every client sends — one JSON object whose
// members are strings or numbers, keys without escapes — in one pass with
// no allocation, in place of encoding/json's decoder into a map, the
// largest cost of a POST in the profile (issue 22). It gives up (ok false)
// on anything else, valid or not, and the caller then takes the general
// path, so that every error message, and the answer to every odd body, is
// encoding/json's: FuzzScanAgreesWithDecoder holds the two paths to the
// same results. Like a map, a repeated member keeps its last value. The
// body was checked to be UTF-8 before.
func scanFlatObject(b []byte) (f fields, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return f, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return f, skipSpace(b, i+1) == len(b)
	}
	for {
		// key
		if i >= len(b) || b[i] != '"' {
			return f, false
		}
		k := i + 1
		for k < len(b) && b[k] != '"' {
			if b[k] == '\\' || b[k] < 0x20 {
				return f, false
			}
			k++
		}
		if k >= len(b) {
			return f, false
		}
		key := b[i+1 : k]
		i = skipSpace(b, k+1)
		if i >= len(b) || b[i] != ':' {
			return f, false
		}
		i = skipSpace(b, i+1)
		// value: a string or a number
		end, ok := scanString(b, i)
		if !ok {
			if end, ok = scanNumber(b, i); !ok {
				return f, false
			}
		}
		f.set(key, b[i:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return f, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return f, skipSpace(b, i+1) == len(b)
		default:
			return f, false
		}
	}
}

// skipSpace skips JSON's whitespace from i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the end (past the closing quote) of the JSON string
// at i, checking its escapes; control characters make it give up.
func scanString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber returns the end of the JSON number at i, by its grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}
