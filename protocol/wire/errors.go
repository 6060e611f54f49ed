package wire

import (
	"errors"
	"fmt"
	"time"

	"paydesk/payment"
)

// Sentinel errors. Every error this package returns wraps exactly one of
// them, so callers decide what to do with errors.Is and never by matching
// text.
var (
	// ErrFrameTooLarge is a frame over the size cap (MaxFrame for the
	// guard). A FrameReader that returns it is finished: the stream has lost
	// its framing and the caller closes the connection.
	ErrFrameTooLarge = errors.New("protocol: frame too large")
	// ErrMalformedJSON is input that Python's json.loads would refuse
	// (including invalid UTF-8), so no signature over it can be checked.
	ErrMalformedJSON = errors.New("protocol: malformed JSON")
	// ErrBadEnvelope is well-formed JSON that is not an envelope: not an
	// object, no "payload" object, no "signature" of 64 lowercase hex
	// digits; also an authentic payload whose plans cannot be decoded.
	ErrBadEnvelope = errors.New("protocol: bad envelope")
	// ErrBadSignature is an envelope whose signature does not match its
	// payload under the shared secret.
	ErrBadSignature = errors.New("protocol: bad signature")
	// ErrStale is a timestamp outside the window around now, in the past or
	// in the future.
	ErrStale = errors.New("protocol: timestamp outside window")
	// ErrReplay is a nonce already seen while its message was still inside
	// the window.
	ErrReplay = errors.New("protocol: nonce replayed")
	// ErrMissingField is an authentic payload without a usable "type",
	// "nonce" or "timestamp".
	ErrMissingField = errors.New("protocol: missing field")
	// ErrBadAmount is an amount that is not a non-negative number with at
	// most two decimals that fits in int64 minor units. It wraps
	// payment.ErrBadAmount so code outside this package can test for either.
	ErrBadAmount = fmt.Errorf("protocol: %w", payment.ErrBadAmount)
	// ErrNonceStoreFull is a nonce refused because the store holds its hard
	// cap of live nonces: refusing new traffic is safer than forgetting live
	// nonces and re-opening replay.
	ErrNonceStoreFull = errors.New("protocol: nonce store full")
	// ErrUnsupportedValue is an outbound Payload value that has no JSON form
	// in the MobyPay canonical encoding (a channel, a NaN, invalid UTF-8...).
	ErrUnsupportedValue = errors.New("protocol: unsupported payload value")
)

// RejectError says why an inbound frame was refused, so the connection can
// log a short reason and tests can still reach the sentinel with errors.Is.
type RejectError struct {
	// Reason is a short human sentence: "invalid signature", "nonce already
	// seen within 60s".
	Reason string
	// Err wraps one of the sentinel errors.
	Err error
	// Stale is set by Verifier.Check for an authentic frame (its signature
	// verified) refused only for its timestamp: the message, so the caller
	// can tie it to a transaction. Its nonce was not recorded. Now is the
	// time it was checked against.
	Stale *Message
	Now   time.Time
}

// Error returns the reason with the package prefix.
func (e *RejectError) Error() string { return "protocol: rejected: " + e.Reason }

// Unwrap returns the underlying error so errors.Is finds the sentinel.
func (e *RejectError) Unwrap() error { return e.Err }

// reject builds a RejectError; err is a sentinel or an error wrapping one.
func reject(err error, reason string) *RejectError {
	return &RejectError{Reason: reason, Err: err}
}
