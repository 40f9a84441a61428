package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits. They are part of the API contract (service/README.md).
const (
	MaxBodyBytes     = 16 << 10 // request body; larger gets 413
	MaxEmailLen      = 254      // characters, RFC 5321's path limit
	MaxCommentLen    = 2000     // characters
	MaxContentIDLen  = 128      // characters
	contentIDPathSep = "/"
)

// NewComment is a validated POST /api/comment/new body.
type NewComment struct {
	Email     string
	Comment   string
	ContentID string
}

// InputError is a client mistake: it becomes a 4xx with a JSON body.
type InputError struct {
	Status  int    // HTTP status
	Field   string // offending field, "" for the whole body
	Message string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func badField(field, format string, args ...any) *InputError {
	return &InputError{Status: 400, Field: field, Message: fmt.Sprintf(format, args...)}
}

// DecodeNewComment parses and validates a comment body. Unknown fields are
// ignored, as the Flask app did; content_id may be a JSON string or number and
// is kept as the string it was written as (1 -> "1").
func DecodeNewComment(body []byte) (NewComment, error) { return decodeNewComment(body, true) }

// decodeNewComment is DecodeNewComment with the flat-object scan on or off
// (off: the tests' reference).
func decodeNewComment(body []byte, scan bool) (NewComment, error) {
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD: refuse
	// it instead, so what is stored is what the client sent.
	if !utf8.Valid(body) {
		return NewComment{}, &InputError{Status: 400, Message: "body is not valid UTF-8"}
	}
	var raw fields
	ok := false
	if scan {
		raw, ok = scanFlatObject(body)
	}
	if !ok {
		var err error
		if raw, err = decodeObject(body); err != nil {
			return NewComment{}, err
		}
	}

	var nc NewComment
	var err error
	if nc.Email, err = stringField(raw, "email"); err != nil {
		return NewComment{}, err
	}
	if nc.Comment, err = stringField(raw, "comment"); err != nil {
		return NewComment{}, err
	}
	if nc.ContentID, err = contentIDField(raw); err != nil {
		return NewComment{}, err
	}
	if err := ValidateEmail(nc.Email); err != nil {
		return NewComment{}, err
	}
	if n := utf8.RuneCountInString(nc.Comment); n > MaxCommentLen {
		return NewComment{}, badField("comment", "is %d characters long; the limit is %d", n, MaxCommentLen)
	}
	if err := ValidateContentID(nc.ContentID); err != nil {
		return NewComment{}, err
	}
	return nc, nil
}

func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	case errors.As(err, &typ):
		return "got a JSON " + typ.Value
	case err == io.EOF:
		return "empty body"
	case err == io.ErrUnexpectedEOF:
		return "truncated JSON"
	}
	return err.Error()
}

// decodeObject is the general path: encoding/json over any body, for what
// scanFlatObject does not take.
func decodeObject(body []byte) (fields, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return fields{}, &InputError{Status: 400, Message: "body is not a JSON object: " + jsonProblem(err)}
	}
	if raw == nil {
		return fields{}, &InputError{Status: 400, Message: "body is not a JSON object: got null"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fields{}, &InputError{Status: 400, Message: "body has data after the JSON object"}
	}
	var f fields
	for name, v := range raw {
		f.set([]byte(name), v)
	}
	return f, nil
}

func stringField(raw fields, name string) (string, error) {
	v, ok := raw.get(name)
	if !ok {
		return "", badField(name, "is required")
	}
	s, err := jsonString(v)
	if err != nil {
		return "", badField(name, "must be a JSON string, got %s", jsonKind(v))
	}
	if strings.TrimSpace(s) == "" {
		return "", badField(name, "must not be empty")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", badField(name, "must not contain the NUL character (\\u0000), which the comment store cannot keep")
	}
	return s, nil
}

func contentIDField(raw fields) (string, error) {
	v, ok := raw.get("content_id")
	if !ok {
		return "", badField("content_id", "is required")
	}
	switch kind := jsonKind(v); kind {
	case "number":
		return string(bytes.TrimSpace(v)), nil
	case "string":
		s, err := jsonString(v)
		if err != nil {
			return "", badField("content_id", "is not a valid JSON string")
		}
		if strings.TrimSpace(s) == "" {
			return "", badField("content_id", "must not be empty")
		}
		return s, nil
	default:
		return "", badField("content_id", "must be a JSON string or number, got %s", kind)
	}
}

// jsonString decodes a JSON string value. Most are plain — quotes around
// bytes with no escapes or control characters — and are taken as they are
// (the body was checked to be UTF-8), sparing encoding/json's decoder, the
// largest cost of a POST in the profile; the rest go through it.
func jsonString(v json.RawMessage) (string, error) {
	v = bytes.Trim(v, " \t\r\n") // JSON's whitespace, not Unicode's
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		plain := true
		for _, c := range v[1 : len(v)-1] {
			if c == '\\' || c == '"' || c < 0x20 {
				plain = false
				break
			}
		}
		if plain {
			return string(v[1 : len(v)-1]), nil
		}
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch c := v[0]; {
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	default:
		return "number"
	}
}

// ValidateEmail accepts a bare address (local@domain), not a display-name form.
func ValidateEmail(email string) error {
	if n := utf8.RuneCountInString(email); n > MaxEmailLen {
		return badField("email", "is %d characters long; the limit is %d", n, MaxEmailLen)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return badField("email", "%q is not an e-mail address (want local@domain)", email)
	}
	return nil
}

// ValidateContentID checks an id from a body or a URL path. It must fit in
// one path segment that survives URL normalisation (not "." or "..", no
// "/"), so every id that can be written can also be listed; control
// characters (NUL among them, which PostgreSQL cannot store) are refused.
func ValidateContentID(id string) error {
	if strings.TrimSpace(id) == "" {
		return badField("content_id", "must not be empty")
	}
	if n := utf8.RuneCountInString(id); n > MaxContentIDLen {
		return badField("content_id", "is %d characters long; the limit is %d", n, MaxContentIDLen)
	}
	if !utf8.ValidString(id) {
		return badField("content_id", "is not valid UTF-8")
	}
	if id == "." || id == ".." {
		// The list URL would be /api/comment/list/. or /.., which every
		// HTTP stack normalises away (RFC 3986 section 5.2.4): such an id
		// could be written but never listed.
		return badField("content_id", "must not be %q (it cannot appear as a URL path segment)", id)
	}
	if strings.Contains(id, contentIDPathSep) {
		return badField("content_id", "must not contain %q", contentIDPathSep)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return badField("content_id", "must not contain control characters")
		}
	}
	return nil
}
