package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"paydesk/payment"
)

// Message is a verified inbound payload's fields, decoded once so sessions
// never touch raw JSON. All fields are optional except Type, Nonce and
// Timestamp (the guard refuses a payload without them); unknown extra fields
// are allowed and ignored, as the real POS adds some (pos_id, kiosk_id).
// A Message owns its memory: it stays valid after the next Check.
type Message struct {
	// Type is "type" ("ack", "transaction_result", "error"), TxnID
	// txn_id, Status status ("processing", "success", "ipp_plans"...),
	// PosID pos_id, KioskID kiosk_id, Nonce nonce (an opaque string).
	Type, TxnID, Status, PosID, KioskID, Nonce string
	// Timestamp is the sender's clock, from milliseconds since the epoch.
	Timestamp time.Time
	// Amount is the JSON number text as received ("2.0"), empty when
	// absent; use AmountMinor. A string amount ("2.00") is kept as its text.
	Amount string
	// PaymentMode is payment_mode, TransactionID the POS's own id
	// (transaction_id, "000410": a string, leading zeros kept), AuthCode
	// authorization_code, CardLast4 card_last4, ErrorMessage error_message
	// (USER_ABORT), Message the text of a type "error" message, PlanID
	// plan_id.
	PaymentMode, TransactionID, AuthCode, CardLast4, ErrorMessage, Message, PlanID string
	// Plans are the instalment plans of an ipp_plans result, nil when the
	// payload has none, empty (not nil) when it has an empty list.
	Plans []payment.Plan
	// Payload is the payload object as received (a copy).
	Payload []byte
}

// field identifies a payload member the guard or the sessions use.
type field uint8

const (
	fType field = iota
	fTxnID
	fStatus
	fPosID
	fKioskID
	fNonce
	fTimestamp
	fAmount
	fPaymentMode
	fTransactionID
	fAuthCode
	fCardLast4
	fErrorMessage
	fMessage
	fPlanID
	fPlans
	numFields
)

// fieldOf maps a payload key to its field. It switches on the length
// first, so each key costs one or two short comparisons.
func fieldOf(key []byte) (field, bool) {
	switch len(key) {
	case 4:
		if string(key) == "type" {
			return fType, true
		}
	case 5:
		switch string(key) {
		case "nonce":
			return fNonce, true
		case "plans":
			return fPlans, true
		}
	case 6:
		switch string(key) {
		case "txn_id":
			return fTxnID, true
		case "status":
			return fStatus, true
		case "pos_id":
			return fPosID, true
		case "amount":
			return fAmount, true
		}
	case 7:
		switch string(key) {
		case "message":
			return fMessage, true
		case "plan_id":
			return fPlanID, true
		}
	case 8:
		if string(key) == "kiosk_id" {
			return fKioskID, true
		}
	case 9:
		if string(key) == "timestamp" {
			return fTimestamp, true
		}
	case 10:
		if string(key) == "card_last4" {
			return fCardLast4, true
		}
	case 12:
		if string(key) == "payment_mode" {
			return fPaymentMode, true
		}
	case 13:
		if string(key) == "error_message" {
			return fErrorMessage, true
		}
	case 14:
		if string(key) == "transaction_id" {
			return fTransactionID, true
		}
	case 18:
		if string(key) == "authorization_code" {
			return fAuthCode, true
		}
	}
	return 0, false
}

// fieldRef locates a member's value in the source bytes, recorded during the
// canonical pass so nothing is parsed twice. It is kept small: the guard
// notes one per payload member.
type fieldRef struct {
	// src[v0:v1] is the raw value; for a string, the part between quotes.
	v0, v1 int32
	// kind is the value's class: '"' string, '0' number, '{', '[', or 'l'
	// for true, false, null and Python's NaN and infinities; 0 when the
	// member is absent.
	kind byte
	// esc reports a string with escapes (it needs decoding).
	esc bool
}

// set reports whether the payload had the member.
func (r fieldRef) set() bool { return r.kind != 0 }

// payloadFields collects the known members of one payload object.
type payloadFields struct {
	f [numFields]fieldRef
}

func (p *payloadFields) reset() { *p = payloadFields{} }

// note records the value src[v0:v1] of member key (esc: a string value
// with escapes); a later duplicate key replaces an earlier one, as in a
// Python dict.
func (p *payloadFields) note(key, src []byte, v0, v1 int, esc bool) {
	id, ok := fieldOf(key)
	if !ok {
		return
	}
	r := &p.f[id]
	switch b := src[v0]; {
	case b == '"':
		r.v0, r.v1, r.kind, r.esc = int32(v0+1), int32(v1-1), '"', esc
		return
	case b == '{' || b == '[':
		r.kind = b
	case (b == '-' || isDigit(b)) && !(v1-v0 > 1 && src[v0+1] == 'I'):
		r.kind = '0'
	default:
		r.kind = 'l' // literals, -Infinity
	}
	r.v0, r.v1, r.esc = int32(v0), int32(v1), false
}

// stringFields are the fields decoded into Message strings, with where they go.
var stringFields = [...]field{fType, fTxnID, fStatus, fPosID, fKioskID, fNonce, fAmount,
	fPaymentMode, fTransactionID, fAuthCode, fCardLast4, fErrorMessage, fMessage, fPlanID}

func (m *Message) stringField(id field) *string {
	switch id {
	case fType:
		return &m.Type
	case fTxnID:
		return &m.TxnID
	case fStatus:
		return &m.Status
	case fPosID:
		return &m.PosID
	case fKioskID:
		return &m.KioskID
	case fNonce:
		return &m.Nonce
	case fAmount:
		return &m.Amount
	case fPaymentMode:
		return &m.PaymentMode
	case fTransactionID:
		return &m.TransactionID
	case fAuthCode:
		return &m.AuthCode
	case fCardLast4:
		return &m.CardLast4
	case fErrorMessage:
		return &m.ErrorMessage
	case fMessage:
		return &m.Message
	case fPlanID:
		return &m.PlanID
	}
	return nil
}

// checkRequired applies the guard's field rules: "type" and "nonce" are
// non-empty strings, "timestamp" is a string of digits or an integer
// (milliseconds since the epoch). With require unset, absent fields pass but
// present ones must still have the right shape.
func (p *payloadFields) checkRequired(src []byte, require bool) (ms int64, err *RejectError) {
	for _, id := range [...]field{fType, fNonce} {
		name := "type"
		if id == fNonce {
			name = "nonce"
		}
		r := p.f[id]
		switch {
		case !r.set() && !require:
		case !r.set():
			return 0, reject(fmt.Errorf("payload has no %q: %w", name, ErrMissingField), "missing "+name)
		case r.kind != '"' || r.v1 == r.v0:
			return 0, reject(fmt.Errorf("payload %q is not a non-empty string: %w", name, ErrMissingField), name+" is not a non-empty string")
		}
	}
	r := p.f[fTimestamp]
	if !r.set() {
		if require {
			return 0, reject(fmt.Errorf(`payload has no "timestamp": %w`, ErrMissingField), "missing timestamp")
		}
		return 0, nil
	}
	ms, ok := parseMillis(src, r)
	if !ok {
		return 0, reject(fmt.Errorf(`payload "timestamp" is not milliseconds since the epoch: %w`, ErrMissingField), "timestamp is not milliseconds since the epoch")
	}
	return ms, nil
}

// parseMillis reads a timestamp given as a string of digits or an integer
// number, as the POS and the reference kiosk write it.
func parseMillis(src []byte, r fieldRef) (int64, bool) {
	raw := src[r.v0:r.v1]
	if r.esc {
		var buf [64]byte
		raw = decodeString(buf[:0], raw, false)
	}
	if (r.kind != '"' && r.kind != '0') || len(raw) == 0 {
		return 0, false
	}
	var v int64
	for i, b := range raw {
		if !isDigit(b) {
			return 0, false
		}
		if i >= 18 && (v > (1<<63-1-int64(b-'0'))/10) {
			return 0, false
		}
		v = v*10 + int64(b-'0')
	}
	return v, true
}

// buildMessage copies the payload and the decoded fields into memory the
// Message owns, so keeping it costs the connection nothing. payload is
// src[p0:p1].
func buildMessage(src []byte, p0, p1 int, f *payloadFields, ms int64) (*Message, error) {
	size := p1 - p0
	for _, id := range stringFields {
		if r := f.f[id]; r.set() && (r.kind == '"' || (id == fAmount && r.kind == '0')) {
			size += int(r.v1 - r.v0) // decoding never makes a string longer
		}
	}
	// One allocation holds the Message and, for frames of usual size, the
	// payload copy and every string.
	box := new(messageBox)
	m := &box.m
	var store []byte
	if size <= len(box.buf) {
		store = box.buf[:0:size]
	} else {
		store = make([]byte, 0, size)
	}
	store = append(store, src[p0:p1]...)
	m.Payload = store[: p1-p0 : p1-p0]
	if f.f[fTimestamp].set() {
		m.Timestamp = time.UnixMilli(ms)
	}
	for _, id := range stringFields {
		r := f.f[id]
		if !r.set() || !(r.kind == '"' || (id == fAmount && r.kind == '0')) {
			continue
		}
		at := len(store)
		if r.esc {
			store = decodeString(store, src[r.v0:r.v1], false)
		} else {
			store = append(store, src[r.v0:r.v1]...)
		}
		// The strings live in store's tail, which nothing writes to
		// after this append (store never reallocates: its capacity was
		// sized above) and which Payload's capacity stops before.
		if n := len(store) - at; n > 0 {
			*m.stringField(id) = unsafe.String(&store[at], n)
		}
	}
	if r := f.f[fPlans]; r.set() && r.kind != 'l' {
		plans, err := decodePlans(src[r.v0:r.v1])
		if err != nil {
			return nil, err
		}
		m.Plans = plans
	}
	return m, nil
}

// messageBox is a Message with room for its bytes: 760 bytes, which with
// the 8-byte malloc header fill the 768-byte size class, enough for a
// result's payload and its fields.
type messageBox struct {
	m   Message
	buf [760 - unsafe.Sizeof(Message{})]byte
}

// wirePlan is a plan as the POS writes it; numbers stay text until
// AmountMinor converts them exactly.
type wirePlan struct {
	PlanID             string       `json:"planId"`
	Frequency          string       `json:"frequency"`
	TotalInstallments  json.Number  `json:"totalInstallments"`
	InstallmentDetails []wireInstal `json:"installmentDetails"`
}

type wireInstal struct {
	InstallmentNumber        json.Number `json:"installmentNumber"`
	Date                     string      `json:"date"`
	Amount                   json.Number `json:"amount"`
	InstallmentFee           json.Number `json:"installmentFee"`
	InstallmentFeePercentage json.Number `json:"installmentFeePercentage"`
}

// decodePlans decodes the "plans" array of an ipp_plans result. It is rare,
// so encoding/json is used; amounts go through AmountMinor.
func decodePlans(raw []byte) ([]payment.Plan, error) {
	bad := func(err error) error {
		return reject(fmt.Errorf("decoding plans: %v: %w", err, ErrBadEnvelope), "malformed plans")
	}
	var wire []wirePlan
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, bad(err)
	}
	plans := make([]payment.Plan, 0, len(wire))
	for i, w := range wire {
		p := payment.Plan{ID: w.PlanID, Frequency: w.Frequency}
		if w.TotalInstallments != "" {
			n, err := strconv.Atoi(string(w.TotalInstallments))
			if err != nil {
				return nil, bad(fmt.Errorf("plan %d totalInstallments: %w", i, err))
			}
			p.TotalInstallments = n
		}
		for j, d := range w.InstallmentDetails {
			in := payment.Installment{Date: d.Date, FeePercent: string(d.InstallmentFeePercentage)}
			if d.InstallmentNumber != "" {
				n, err := strconv.Atoi(string(d.InstallmentNumber))
				if err != nil {
					return nil, bad(fmt.Errorf("plan %d installment %d number: %w", i, j, err))
				}
				in.Number = n
			}
			var err error
			if in.Amount, err = planMoney(d.Amount); err != nil {
				return nil, bad(fmt.Errorf("plan %d installment %d amount: %w", i, j, err))
			}
			if in.Fee, err = planMoney(d.InstallmentFee); err != nil {
				return nil, bad(fmt.Errorf("plan %d installment %d fee: %w", i, j, err))
			}
			p.Installments = append(p.Installments, in)
		}
		plans = append(plans, p)
	}
	return plans, nil
}

func planMoney(n json.Number) (payment.Money, error) {
	if n == "" {
		return payment.Money{Currency: payment.DefaultCurrency}, nil
	}
	minor, err := AmountMinor(string(n))
	return payment.Money{Minor: minor, Currency: payment.DefaultCurrency}, err
}

// DecodePayload decodes the fields of a payload object without verifying
// anything: the POS simulator reads the kiosk's messages with it, and tests
// build expectations with it. Fields that are present must have the right
// shape ("type" a string, "timestamp" milliseconds), but none is required.
// Like a frame, a payload may not exceed MaxFrame.
func DecodePayload(payload []byte) (*Message, error) {
	if len(payload) > MaxFrame {
		return nil, reject(fmt.Errorf("payload of %d bytes, limit %d: %w", len(payload), MaxFrame, ErrFrameTooLarge), "payload too large")
	}
	var f payloadFields
	pooled := canonPool.Get().(*canonState)
	c := *pooled
	c.reset(payload, c.spare[:0])
	c.fields = &f
	i := skipWS(payload, 0)
	isObject := i >= len(payload) || payload[i] == '{'
	out, err := c.document()
	c.spare = out[:0]
	c.release()
	*pooled = c
	canonPool.Put(pooled)
	if err == nil && !isObject {
		return nil, reject(fmt.Errorf("payload is not a JSON object: %w", ErrBadEnvelope), "payload is not an object")
	}
	if err != nil {
		return nil, reject(err, "malformed JSON")
	}
	end := len(payload)
	for end > i && isSpace(payload[end-1]) {
		end--
	}
	ms, rerr := f.checkRequired(payload, false)
	if rerr != nil {
		return nil, rerr
	}
	return buildMessage(payload, i, end, &f, ms)
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
