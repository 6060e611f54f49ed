package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"time"
)

// Verify checks one envelope: the payload is canonicalised as received, its
// HMAC-SHA256 under secret compared in constant time (hmac.Equal) with the
// signature, the payload must carry "type", "nonce" and "timestamp", and the
// timestamp must be within window of now (window <= 0 means DefaultWindow).
// It does not check nonces: that needs memory, which the Verifier and its
// NonceStore have. Errors are *RejectError, in the guard's order; a payload
// over MaxFrame is ErrFrameTooLarge.
func Verify(env Envelope, secret []byte, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = DefaultWindow
	}
	if len(env.Payload) > MaxFrame {
		return reject(fmt.Errorf("payload of %d bytes, limit %d: %w", len(env.Payload), MaxFrame, ErrFrameTooLarge), "payload too large")
	}
	var f payloadFields
	i := skipWS(env.Payload, 0)
	isObject := i < len(env.Payload) && env.Payload[i] == '{'
	pooled := canonPool.Get().(*canonState)
	c := *pooled
	c.reset(env.Payload, c.spare[:0])
	if isObject {
		c.fields = &f
	}
	canon, err := c.document()
	defer func() {
		c.spare = canon[:0]
		c.release()
		*pooled = c
		canonPool.Put(pooled)
	}()
	if err != nil {
		return reject(err, "malformed JSON")
	}
	if !isObject {
		return reject(fmt.Errorf("payload is not a JSON object: %w", ErrBadEnvelope), "payload is not an object")
	}
	var sig [sha256.Size]byte
	if !decodeSignature(&sig, []byte(env.Signature)) {
		return reject(fmt.Errorf("signature %q is not 64 lowercase hex digits: %w", env.Signature, ErrBadEnvelope), "signature is not 64 lowercase hex digits")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(canon)
	if !hmac.Equal(mac.Sum(nil), sig[:]) {
		return reject(fmt.Errorf("verifying HMAC-SHA256 of the canonical payload: %w", ErrBadSignature), "invalid signature")
	}
	ms, rerr := f.checkRequired(env.Payload, true)
	if rerr != nil {
		return rerr
	}
	if err := checkWindow(time.UnixMilli(ms), now, window); err != nil {
		return err
	}
	return nil
}

// checkWindow refuses a timestamp at window or more from now, in the past
// (an old message replayed) or the future (a clock far ahead, or a message
// made to outlive the nonce store). The bound is strict, as in the
// reference kiosk (abs(now-ts) < 60000).
func checkWindow(ts, now time.Time, window time.Duration) *RejectError {
	d := now.Sub(ts)
	if d < window && d > -window {
		return nil
	}
	when := "in the past"
	if d < 0 {
		when, d = "in the future", -d
	}
	return reject(fmt.Errorf("timestamp %s is %s %s, window %s: %w",
		ts.UTC().Format(time.RFC3339Nano), d, when, window, ErrStale),
		fmt.Sprintf("timestamp %s %s, outside the %s window", d.Round(time.Millisecond), when, formatWindow(window)))
}

// formatWindow writes a window the way people say it: "60s", "1.5s".
func formatWindow(w time.Duration) string {
	if w%time.Second == 0 {
		return fmt.Sprintf("%ds", w/time.Second)
	}
	return w.String()
}

// decodeSignature decodes 64 lowercase hex digits, the only form Python's
// hexdigest writes; anything else is a malformed envelope rather than a
// wrong MAC, so the log says which.
func decodeSignature(dst *[sha256.Size]byte, s []byte) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	bad := byte(0)
	for i := range dst {
		hi, lo := lowerHexVal[s[2*i]], lowerHexVal[s[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo&0x0f
	}
	return bad&0xf0 == 0
}

// lowerHexVal maps '0'-'9' and 'a'-'f' to their value and every other byte
// to 0xff, so one OR over the signature tells whether all digits were valid.
var lowerHexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < 16; i++ {
		t[hexDigits[i]] = byte(i)
	}
	return t
}()

// VerifierOptions tune a Verifier; the zero value is the MobyPay default.
type VerifierOptions struct {
	// Window is how far a timestamp may be from now, either way. The
	// default is DefaultWindow (60 seconds). It should equal the
	// NonceStore's window.
	Window time.Duration
	// Now is the clock, injectable for tests. The default is time.Now.
	Now func() time.Time
}

// Verifier runs the inbound guard for one connection. It reuses its buffers
// and its HMAC state, so the steady state costs one allocation per message:
// the Message, with its payload copy and strings in the same block. It is
// not safe for concurrent use: give each connection its own and share the
// NonceStore.
type Verifier struct {
	mac      hash.Hash
	nonces   *NonceStore
	window   time.Duration
	now      func() time.Time
	st       canonState
	canon    []byte
	keyBuf   []byte
	sigBuf   []byte
	nonceBuf []byte
	fields   payloadFields
	sig      [sha256.Size]byte
	sum      [sha256.Size]byte
	// replayReason is built once: "nonce already seen within 60s".
	replayReason string
}

// NewVerifier returns a guard for one connection. nonces is the store shared
// by every connection; nil gives this Verifier a private store (only for
// tests and tools, since replay across connections then goes unseen).
func NewVerifier(secret []byte, nonces *NonceStore, opts VerifierOptions) *Verifier {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if nonces == nil {
		nonces = NewNonceStore(opts.Window, 0)
	}
	return &Verifier{
		mac:          hmac.New(sha256.New, secret),
		nonces:       nonces,
		window:       opts.Window,
		now:          opts.Now,
		replayReason: "nonce already seen within " + formatWindow(nonces.window),
	}
}

// envelopeParts is what one pass over a frame found.
type envelopeParts struct {
	notObject                  bool
	payloadSeen, payloadObject bool
	sigSeen, sigString, sigEsc bool
	// frame[p0:p1] is the payload object; frame[s0:s1] the signature's body.
	p0, p1, s0, s1 int
}

// Check runs the inbound guard on one frame, in this order: size (over
// MaxFrame: ErrFrameTooLarge), JSON well-formed (ErrMalformedJSON),
// envelope shape (an object with a "payload" object and a "signature" of 64
// lowercase hex digits; other top-level keys ignored; else ErrBadEnvelope),
// signature (ErrBadSignature), "type", "nonce" and "timestamp" present
// (ErrMissingField), timestamp within the window (ErrStale), nonce not seen
// (ErrReplay, or ErrNonceStoreFull). The order matters: nothing about an
// unauthenticated payload is trusted, and a refused frame never consumes a
// nonce, so a forged copy cannot burn a genuine message's nonce.
//
// Every error is a *RejectError. On success the decoded Message owns its
// memory and the nonce is recorded.
func (v *Verifier) Check(frame []byte) (*Message, error) {
	if len(frame) > MaxFrame {
		return nil, reject(fmt.Errorf("frame of %d bytes, limit %d: %w", len(frame), MaxFrame, ErrFrameTooLarge), "frame too large")
	}
	parts, err := v.parse(frame)
	if err != nil {
		return nil, reject(err, "malformed JSON")
	}
	switch {
	case parts.notObject:
		return nil, reject(fmt.Errorf("frame is JSON but not an object: %w", ErrBadEnvelope), "not a JSON object")
	case !parts.payloadSeen:
		return nil, reject(fmt.Errorf(`envelope has no "payload": %w`, ErrBadEnvelope), "missing payload")
	case !parts.payloadObject:
		return nil, reject(fmt.Errorf(`envelope "payload" is not an object: %w`, ErrBadEnvelope), "payload is not an object")
	case !parts.sigSeen:
		return nil, reject(fmt.Errorf(`envelope has no "signature": %w`, ErrBadEnvelope), "missing signature")
	case !parts.sigString:
		return nil, reject(fmt.Errorf(`envelope "signature" is not a string: %w`, ErrBadEnvelope), "signature is not a string")
	}
	sig := frame[parts.s0:parts.s1]
	if parts.sigEsc {
		v.sigBuf = decodeString(v.sigBuf[:0], sig, false)
		sig = v.sigBuf
	}
	if !decodeSignature(&v.sig, sig) {
		return nil, reject(fmt.Errorf("signature of %d bytes is not 64 lowercase hex digits: %w", len(sig), ErrBadEnvelope), "signature is not 64 lowercase hex digits")
	}
	v.mac.Reset()
	v.mac.Write(v.canon)
	if !hmac.Equal(v.mac.Sum(v.sum[:0]), v.sig[:]) {
		return nil, reject(fmt.Errorf("verifying HMAC-SHA256 of the canonical payload: %w", ErrBadSignature), "invalid signature")
	}
	ms, rerr := v.fields.checkRequired(frame, true)
	if rerr != nil {
		return nil, rerr
	}
	ts, now := time.UnixMilli(ms), v.now()
	if werr := checkWindow(ts, now, v.window); werr != nil {
		// Authentic but outside the window: the caller may need to know
		// what it said (an answer from a POS whose clock is off). Its
		// nonce is not recorded.
		if msg, err := buildMessage(frame, parts.p0, parts.p1, &v.fields, ms); err == nil {
			werr.Stale, werr.Now = msg, now
		}
		return nil, werr
	}
	msg, err := buildMessage(frame, parts.p0, parts.p1, &v.fields, ms)
	if err != nil {
		return nil, err
	}
	s := v.nonces
	key := nonceKey{maphash.String(s.seeds[0], msg.Nonce), maphash.String(s.seeds[1], msg.Nonce)}
	if r := v.fields.f[fNonce]; r.esc {
		// Message.Nonce shows lone surrogates as U+FFFD; the store must
		// tell apart the nonces Python tells apart.
		v.nonceBuf = decodeString(v.nonceBuf[:0], frame[r.v0:r.v1], true)
		key = nonceKey{maphash.Bytes(s.seeds[0], v.nonceBuf), maphash.Bytes(s.seeds[1], v.nonceBuf)}
	}
	if err := s.use(key, ts, now); err != nil {
		switch {
		case errors.Is(err, ErrReplay):
			return nil, reject(err, v.replayReason)
		case errors.Is(err, ErrNonceStoreFull):
			return nil, reject(err, "nonce store full")
		default:
			return nil, reject(err, "timestamp outside the nonce store's window")
		}
	}
	return msg, nil
}

// parse walks the frame once: it checks that the whole frame is JSON as
// Python reads it, canonicalises the payload into v.canon while noting its
// fields, and locates the signature. Shape problems are reported by the
// caller only after the whole frame proved well-formed.
func (v *Verifier) parse(frame []byte) (envelopeParts, error) {
	// Work on a copy on the stack: stores into it need no GC write
	// barriers, which every append would otherwise pay while a collection
	// runs.
	c := v.st
	c.reset(frame, c.spare[:0])
	parts, err := v.parseEnvelope(&c, frame)
	c.spare = c.out[:0]
	c.release()
	v.st = c
	return parts, err
}

func (v *Verifier) parseEnvelope(c *canonState, frame []byte) (envelopeParts, error) {
	var parts envelopeParts
	i := skipWS(frame, 0)
	if i >= len(frame) || frame[i] != '{' {
		_, err := c.document() // malformed, or JSON that is not an object
		parts.notObject = true
		return parts, err
	}
	c.depth = 1
	i = skipWS(frame, i+1)
	if i < len(frame) && frame[i] == '}' {
		i++
	} else {
		for {
			if i >= len(frame) || frame[i] != '"' {
				return parts, c.syntax(i, "expecting a property name in double quotes")
			}
			end, esc, err := c.str(i)
			if err != nil {
				return parts, err
			}
			key := frame[i+1 : end-1]
			if esc {
				v.keyBuf = decodeString(v.keyBuf[:0], key, true)
				key = v.keyBuf
			}
			c.out = c.out[:0]
			if i = skipWS(frame, end); i >= len(frame) || frame[i] != ':' {
				return parts, c.syntax(i, "expecting ':'")
			}
			i = skipWS(frame, i+1)
			isObj := i < len(frame) && frame[i] == '{'
			isStr := i < len(frame) && frame[i] == '"'
			switch string(key) {
			case "payload":
				parts.payloadSeen, parts.payloadObject = true, isObj
				if isObj {
					v.fields.reset()
					spare := c.out
					c.out, c.fields, c.depth = v.canon[:0], &v.fields, 0
					parts.p0 = i
					i, err = c.object(i)
					parts.p1 = i
					v.canon, c.out, c.fields, c.depth = c.out, spare, nil, 1
					break
				}
				i, err = c.value(i)
			case "signature":
				parts.sigSeen, parts.sigString = true, isStr
				if isStr {
					parts.s0 = i + 1
					i, parts.sigEsc, err = c.str(i)
					parts.s1 = i - 1
					break
				}
				i, err = c.value(i)
			default:
				i, err = c.value(i)
			}
			if err != nil {
				return parts, err
			}
			c.out = c.out[:0]
			if i = skipWS(frame, i); i >= len(frame) {
				return parts, c.syntax(i, "unterminated object")
			}
			if frame[i] == ',' {
				i = skipWS(frame, i+1)
				continue
			}
			if frame[i] != '}' {
				return parts, c.syntax(i, "expecting ',' or '}'")
			}
			i++
			break
		}
	}
	if i = skipWS(frame, i); i != len(frame) {
		return parts, c.syntax(i, "extra data after value")
	}
	return parts, nil
}
