package api

import (
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"microk8s-platform/service/store"
)

// The two bodies the service answers with, a Status and a list of
// comments, are written by hand into a pooled buffer and sent in one Write. json.NewEncoder(w).Encode, which this replaces,
// reflected over the value and allocated an encoder per response, among the
// top costs of a GET in the profile (issue 22). The bytes are the same as
// encoding/json's, escaping included (HTML-safe, U+2028 and U+2029, invalid
// UTF-8 as U+FFFD): encode_test.go checks it, and FuzzEncodingMatchesJSON
// searches for a difference.

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// chunkingThreshold: a response whose handler sets no Content-Length and
// writes less than this before it returns gets its Content-Length from
// net/http; more, and it is sent chunked (net/http server.go,
// bufferBeforeChunkingSize = 2048).
const chunkingThreshold = 2048

// Header values shared by every response; net/http only reads them.
var (
	jsonContentType = []string{"application/json"}
	noSniff         = []string{"nosniff"}
)

func writeStatus(w http.ResponseWriter, code int, s Status) {
	bp := bufPool.Get().(*[]byte)
	send(w, code, bp, appendStatus((*bp)[:0], s))
}

func writeComments(w http.ResponseWriter, code int, cs []store.Comment) {
	bp := bufPool.Get().(*[]byte)
	send(w, code, bp, appendComments((*bp)[:0], cs))
}

// send writes the body b, built in the pooled buffer bp, and returns the
// buffer to the pool.
func send(w http.ResponseWriter, code int, bp *[]byte, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = noSniff
	if len(b) >= chunkingThreshold {
		// Declared, or net/http would send it chunked. Below the
		// threshold net/http writes the length itself, with no header
		// entry to allocate and copy.
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 { // a huge list's buffer is not kept
		*bp = b
		bufPool.Put(bp)
	}
}

// appendStatus is json.Encoder.Encode of a Status: the object, then "\n".
func appendStatus(b []byte, s Status) []byte {
	b = append(b, `{"status":`...)
	b = appendString(b, s.Status)
	b = append(b, `,"message":`...)
	b = appendString(b, s.Message)
	if s.Field != "" {
		b = append(b, `,"field":`...)
		b = appendString(b, s.Field)
	}
	return append(b, "}\n"...)
}

// appendComments is json.Encoder.Encode of a []store.Comment.
func appendComments(b []byte, cs []store.Comment) []byte {
	if cs == nil {
		return append(b, "null\n"...)
	}
	b = append(b, '[')
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"email":`...)
		b = appendString(b, c.Email)
		b = append(b, `,"comment":`...)
		b = appendString(b, c.Comment)
		b = append(b, '}')
	}
	return append(b, "]\n"...)
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping on (its
// default, and what Encoder did here): ", \ and the control characters
// escaped, \b \f \n \r \t in short form, <, > and & as \u003c \u003e
// \u0026, U+2028 and U+2029 escaped for JavaScript, and each byte of
// invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte { return appendQuoted(b, s, true) }

// appendLogString quotes s as log/slog's JSONHandler does: the same but
// for <, > and &, kept as they are, and \b and \f, written \u0008 and
// \u000c (log/slog json_handler.go, appendEscapedJSONString).
func appendLogString(b []byte, s string) []byte { return appendQuoted(b, s, false) }

// safeJSON and safeLog are the ASCII bytes each style writes as they are.
var safeJSON, safeLog [utf8.RuneSelf]bool

func init() {
	for c := byte(0x20); c < utf8.RuneSelf; c++ {
		safeLog[c] = c != '"' && c != '\\'
		safeJSON[c] = safeLog[c] && c != '<' && c != '>' && c != '&'
	}
}

func appendQuoted(b []byte, s string, encodingJSON bool) []byte {
	safe := &safeLog
	if encodingJSON {
		safe = &safeJSON
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case c == '\\' || c == '"':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b' && encodingJSON:
				b = append(b, '\\', 'b')
			case c == '\f' && encodingJSON:
				b = append(b, '\\', 'f')
			default: // other control characters; for encoding/json <, >, &
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
