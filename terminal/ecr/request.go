package ecr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"paydesk/payment"
	"paydesk/terminal/concert"
)

// DefaultCurrency is the currency of a payment request without one, as in
// HiPay's document.
const DefaultCurrency = "EUR"

// DefaultMaxMinor is the largest amount accepted: the 8 digits a Concert
// request carries (999,999.99 EUR).
const DefaultMaxMinor = 99_999_999

// MaxOrderID is the longest orderId accepted, in characters.
const MaxOrderID = 64

// ErrBadRequest is wrapped by every RequestError, so callers can tell a
// refused request from other failures with errors.Is.
var ErrBadRequest = errors.New("bad payment request")

// RequestError says why a payment request was refused. Its message is
// written for the integrator reading the kiosk's logs.
type RequestError struct {
	// Field is the JSON field at fault ("amount", "customData.meta"), or
	// "" for the request as a whole.
	Field  string
	Reason string
}

// Error says what is wrong (with the field, when there is one).
func (e *RequestError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap lets errors.Is(err, ErrBadRequest) match.
func (e *RequestError) Unwrap() error { return ErrBadRequest }

// PaymentRequest is HiPay's payment request, checked. The amount is in
// integer minor units; the fields paydesk does not interpret (basket,
// customer, customData) are kept as the kiosk sent them, to be echoed in
// the response and the notification.
type PaymentRequest struct {
	// Amount is the amount in minor units of its currency.
	Amount payment.Money
	// AmountText is the amount exactly as the kiosk wrote it ("8.99",
	// "100"), echoed in the response as a JSON number.
	AmountText json.Number
	// Currency is the request's currency (DefaultCurrency when absent).
	Currency concert.Currency
	// OrderID is the kiosk's order number, or one generated (a UUID) when
	// the request had none.
	OrderID string
	// OrderIDGenerated is set when paydesk made OrderID up.
	OrderIDGenerated bool
	// Basket, Customer and CustomData are the raw JSON values, nil when
	// absent or null.
	Basket, Customer, CustomData json.RawMessage
	// Ignored lists unknown fields dropped under DecodeOptions.AllowUnknown.
	Ignored []string
}

// DecodeOptions tunes DecodePaymentRequest. The zero value is the default
// policy.
type DecodeOptions struct {
	// Currency is used when the request has none. The default is EUR.
	Currency string
	// MaxMinor is the largest amount in minor units. The default is
	// DefaultMaxMinor, the Concert maximum; a larger value is capped to it.
	MaxMinor int64
	// AllowUnknown ignores top-level fields HiPay's document does not define
	// (listed in PaymentRequest.Ignored). The default refuses them with
	// 400: a misspelt "ammount" or "order_id" must not pass as a request
	// without one.
	AllowUnknown bool
	// NewID mints an orderId when the request has none. The default is
	// uuid.NewString.
	NewID func() string
}

// DecodePaymentRequest reads and checks a payment request body. The rules,
// where HiPay's document leaves a choice:
//
//   - the body is one JSON object; duplicate keys and trailing data are
//     refused (two "amount" keys would make the amount depend on the
//     parser); unknown keys are refused unless AllowUnknown;
//   - amount (mandatory) is a JSON number, in major units of the currency
//     (9.99 EUR). It is converted to minor units with exact decimal
//     arithmetic, never a float: "8.99", "8.990" and "899e-2" are 899
//     cents; a value with a fraction of a minor unit ("8.999"), zero, a
//     negative and more than MaxMinor are refused. A string ("9.99") is a
//     wrong type, not a number;
//   - orderId is a string of at most 64 characters without control
//     characters; absent, null or "" means paydesk generates one;
//   - currency is an ISO 4217 alphabetic code paydesk knows (case is
//     ignored); null or absent means the default; numeric codes are
//     refused (HiPay's document says alpha);
//   - basket is an object or an array (a cart of lines) or null; customer
//     is an object or null; their content is not checked, only echoed;
//   - customData is an object whose values are only booleans, numbers and
//     strings (HiPay's Bool / Int / Float / String); null, an object or
//     an array as a value is refused, naming the key.
func DecodePaymentRequest(body []byte, o DecodeOptions) (PaymentRequest, error) {
	var pr PaymentRequest
	if o.Currency == "" {
		o.Currency = DefaultCurrency
	}
	if o.MaxMinor <= 0 || o.MaxMinor > DefaultMaxMinor {
		o.MaxMinor = DefaultMaxMinor
	}
	if o.NewID == nil {
		o.NewID = uuid.NewString
	}
	bad := func(field, format string, args ...any) (PaymentRequest, error) {
		return PaymentRequest{}, &RequestError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	fields, err := topLevel(body)
	if err != nil {
		return PaymentRequest{}, err
	}
	get := func(k string) (json.RawMessage, bool) {
		v, ok := fields[k]
		if !ok || string(v) == "null" {
			return nil, false
		}
		return v, true
	}
	for k := range fields {
		switch k {
		case "amount", "orderId", "currency", "basket", "customer", "customData":
		default:
			if !o.AllowUnknown {
				return bad("", "unknown field %s: the request takes amount, orderId, currency, basket, customer and customData", strconv.Quote(clip(k)))
			}
			pr.Ignored = append(pr.Ignored, k)
		}
	}

	curCode := o.Currency
	if v, ok := get("currency"); ok {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return bad("currency", "must be a string such as \"EUR\", not %s", jsonType(v))
		}
		if len(s) != 3 || strings.Trim(strings.ToUpper(s), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			return bad("currency", "%s is not an ISO 4217 alphabetic code such as \"EUR\"", strconv.Quote(clip(s)))
		}
		curCode = strings.ToUpper(s)
	}
	cur, err := concert.LookupCurrency(curCode)
	if err != nil {
		return bad("currency", "%s is not a currency the terminal is set up for", strconv.Quote(curCode))
	}
	pr.Currency = cur

	v, ok := get("amount")
	if !ok {
		return bad("amount", "missing: the amount in %s, e.g. 9.99", cur.Alpha)
	}
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return bad("amount", "must be a JSON number such as 9.99, not %s", jsonType(v))
	}
	minor, err := parseMinor(string(v), cur.Decimals, o.MaxMinor)
	if err != nil {
		return bad("amount", "%s %v", clip(string(v)), err)
	}
	pr.Amount = payment.Money{Minor: minor, Currency: cur.Alpha}
	pr.AmountText = json.Number(v)

	if v, ok := get("orderId"); ok {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return bad("orderId", "must be a string such as \"Order_12345\", not %s", jsonType(v))
		}
		if utf8.RuneCountInString(s) > MaxOrderID {
			return bad("orderId", "longer than %d characters", MaxOrderID)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) || r == utf8.RuneError {
				return bad("orderId", "holds a control or invalid character")
			}
		}
		pr.OrderID = s
	}
	if pr.OrderID == "" {
		pr.OrderID, pr.OrderIDGenerated = o.NewID(), true
	}

	if v, ok := get("basket"); ok {
		if v[0] != '{' && v[0] != '[' {
			return bad("basket", "must be a cart object or an array of cart lines, not %s", jsonType(v))
		}
		pr.Basket = v
	}
	if v, ok := get("customer"); ok {
		if v[0] != '{' {
			return bad("customer", "must be an object (id, firstname, lastname, email), not %s", jsonType(v))
		}
		pr.Customer = v
	}
	if v, ok := get("customData"); ok {
		if v[0] != '{' {
			return bad("customData", "must be an object of bool, number and string values, not %s", jsonType(v))
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return bad("customData", "%v", err)
		}
		for k, val := range m {
			switch t := jsonType(val); t {
			case "a string", "a number", "a boolean":
			default:
				return bad("customData."+clip(k), "is %s: only bool, int, float and string values are accepted", t)
			}
		}
		pr.CustomData = v
	}
	return pr, nil
}

// topLevel splits a JSON object into its members, refusing anything else,
// duplicate keys and trailing data. Values are compacted raw JSON.
func topLevel(body []byte) (map[string]json.RawMessage, error) {
	bad := func(format string, args ...any) (map[string]json.RawMessage, error) {
		return nil, &RequestError{Reason: fmt.Sprintf(format, args...)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return bad("empty body: send the payment request as a JSON object")
	}
	if !utf8.Valid(body) {
		return bad("the body is not valid UTF-8")
	}
	if !json.Valid(body) {
		var first json.RawMessage
		if d := json.NewDecoder(bytes.NewReader(body)); d.Decode(&first) == nil {
			return bad("data after the JSON object: send one object")
		}
		var v any
		err := json.Unmarshal(body, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return bad("malformed JSON at byte %d: %v", se.Offset, err)
		}
		return bad("malformed JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return bad("malformed JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return bad("the payment request must be a JSON object, not %s", jsonType(bytes.TrimSpace(body)))
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("malformed JSON: %v", err)
		}
		k, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad("malformed JSON: %v", err)
		}
		if _, dup := out[k]; dup {
			return bad("field %s given twice", strconv.Quote(clip(k)))
		}
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err != nil {
			return bad("malformed JSON: %v", err)
		}
		out[k] = c.Bytes()
	}
	if _, err := dec.Token(); err != nil {
		return bad("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the JSON object: send one object")
	}
	return out, nil
}

// jsonType names the type of a JSON value for messages.
func jsonType(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// parseMinor converts a JSON number in major units to minor units of a
// currency with decimals digits, exactly: the number's digits are shifted
// as a string, never through a float.
func parseMinor(num string, decimals int, maxMinor int64) (int64, error) {
	neg := strings.HasPrefix(num, "-")
	num = strings.TrimPrefix(num, "-")
	mant, expPart, hasExp := strings.Cut(strings.ToLower(num), "e")
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expPart)
		if err != nil || e > 1000 || e < -1000 {
			return 0, errors.New("has an exponent out of range")
		}
		exp = e
	}
	ip, fp, _ := strings.Cut(mant, ".")
	if ip == "" || strings.Trim(ip+fp, "0123456789") != "" {
		return 0, errors.New("is not a number")
	}
	digits := strings.TrimLeft(ip+fp, "0")
	if digits == "" {
		return 0, errors.New("must be more than zero")
	}
	if neg {
		return 0, errors.New("must be positive")
	}
	shift := decimals - len(fp) + exp // minor = digits × 10^shift
	over := fmt.Errorf("is over the maximum of %s", formatMajor(maxMinor, decimals))
	if shift < 0 {
		cut := -shift
		if cut > len(digits) || strings.Trim(digits[len(digits)-cut:], "0") != "" {
			return 0, fmt.Errorf("has more than %d decimals", decimals)
		}
		digits = digits[:len(digits)-cut]
		if digits == "" {
			return 0, errors.New("must be more than zero")
		}
	} else {
		if len(digits)+shift > 18 {
			return 0, over
		}
		digits += strings.Repeat("0", shift)
	}
	if len(digits) > 18 {
		return 0, over
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, over
	}
	if n > maxMinor {
		return 0, over
	}
	return n, nil
}

// formatMajor writes minor units in major units: 99999999, 2 → "999999.99".
func formatMajor(minor int64, decimals int) string {
	s := strconv.FormatInt(minor, 10)
	if decimals == 0 {
		return s
	}
	for len(s) <= decimals {
		s = "0" + s
	}
	return s[:len(s)-decimals] + "." + s[len(s)-decimals:]
}
