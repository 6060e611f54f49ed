package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// DefaultWindow is how far a message's timestamp may be from the receiver's
// clock, in either direction: the MobyPay documents' 60 seconds.
const DefaultWindow = 60 * time.Second

// MaxFrame is the largest inbound frame accepted (64 KiB). Real messages are
// under 1 KiB; a peer that exceeds it has lost framing or is hostile, and its
// connection is closed.
const MaxFrame = 64 << 10

// Payload is an outbound payload: field name → value. Values may be string,
// bool, nil, int, int64 (and the other integer types), float64 (written as
// Python's repr, so 10.0 stays "10.0"), json.Number (a float if it has '.'
// or an exponent, else an integer), []any, []string, map[string]any and
// Payload. Anything else, NaN, the infinities and invalid UTF-8 are refused
// with ErrUnsupportedValue, since the POS could not reproduce them.
type Payload map[string]any

// Envelope is a signed message as it travels: the payload and the hex
// HMAC-SHA256 of its canonical form.
type Envelope struct {
	Payload   json.RawMessage `json:"payload"`
	Signature string          `json:"signature"`
}

// Sign canonicalises the payload, signs it with secret and returns the
// envelope. Payload holds the canonical bytes, so what is sent is exactly
// what was signed.
func Sign(p Payload, secret []byte) (Envelope, error) {
	canon, err := appendPayloadValue(nil, map[string]any(p), 0)
	if err != nil {
		return Envelope{}, fmt.Errorf("signing payload: %w", err)
	}
	return Envelope{Payload: canon, Signature: signHex(canon, secret)}, nil
}

// SignRaw signs an already-encoded JSON payload object as received,
// canonicalising it first: the simulator uses it to send payloads in the
// POS's own key order and spacing. Payload keeps the bytes as given (a
// copy). Errors wrap ErrMalformedJSON, or ErrBadEnvelope if the JSON is not
// an object.
func SignRaw(payload []byte, secret []byte) (Envelope, error) {
	i := skipWS(payload, 0)
	canon, err := Canonical(nil, payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("signing raw payload: %w", err)
	}
	if payload[i] != '{' {
		return Envelope{}, fmt.Errorf("signing raw payload: not a JSON object: %w", ErrBadEnvelope)
	}
	return Envelope{Payload: slices.Clone(payload), Signature: signHex(canon, secret)}, nil
}

func signHex(canon, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(canon)
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(sum[:0]))
}

// Line returns the envelope as one JSON object followed by "\n", the only
// outbound framing: payload first, then signature, as the reference kiosk
// writes them. An empty Payload is written as null.
func (e Envelope) Line() []byte {
	b := make([]byte, 0, len(e.Payload)+len(e.Signature)+30)
	b = append(b, `{"payload":`...)
	if len(e.Payload) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Payload...)
	}
	b = append(b, `,"signature":`...)
	b = appendString(b, e.Signature)
	return append(b, "}\n"...)
}

// appendString appends s as a canonical JSON string (Python's ensure_ascii
// escaping). Invalid UTF-8 comes out as U+FFFD; callers that must refuse it
// check first.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		b := s[i]
		if strSafe[b] {
			j := i + 1
			for j < len(s) && strSafe[s[j]] {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		dst = appendEscapedRune(dst, r)
		i += n
	}
	return append(dst, '"')
}

// appendPayloadValue appends the canonical JSON of one Payload value.
func appendPayloadValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, fmt.Errorf("nesting deeper than %d: %w", maxDepth, ErrUnsupportedValue)
	}
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		if !utf8.ValidString(x) {
			return dst, fmt.Errorf("string %q is not valid UTF-8: %w", x, ErrUnsupportedValue)
		}
		return appendString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return dst, fmt.Errorf("float %v has no JSON form: %w", x, ErrUnsupportedValue)
		}
		return AppendFloat(dst, x), nil
	case json.Number:
		end, isFloat, ok := scanNumber([]byte(x), 0)
		if !ok || end != len(x) {
			return dst, fmt.Errorf("json.Number %q is not a JSON number: %w", string(x), ErrUnsupportedValue)
		}
		out, err := appendNumber(dst, []byte(x), isFloat)
		if err != nil {
			return dst, fmt.Errorf("json.Number %q: %v: %w", string(x), err, ErrUnsupportedValue)
		}
		return out, nil
	case []any:
		return appendPayloadArray(dst, x, depth)
	case []string:
		return appendPayloadArray(dst, x, depth)
	case Payload:
		return appendPayloadValue(dst, map[string]any(x), depth)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			if !utf8.ValidString(k) {
				return dst, fmt.Errorf("key %q is not valid UTF-8: %w", k, ErrUnsupportedValue)
			}
			keys = append(keys, k)
		}
		// Go orders valid UTF-8 strings bytewise, which is code point
		// order: the order of Python's sort_keys.
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = appendPayloadValue(dst, x[k], depth+1); err != nil {
				return dst, fmt.Errorf("%q: %w", k, err)
			}
		}
		return append(dst, '}'), nil
	}
	return dst, fmt.Errorf("value of type %T: %w", v, ErrUnsupportedValue)
}

// appendPayloadArray appends xs as a JSON array, each element as
// appendPayloadValue writes it.
func appendPayloadArray[T any](dst []byte, xs []T, depth int) ([]byte, error) {
	dst = append(dst, '[')
	for i, e := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendPayloadValue(dst, e, depth+1); err != nil {
			return dst, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return append(dst, ']'), nil
}
