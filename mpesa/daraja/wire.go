package daraja

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"paydesk/payment"
)

// Flex is a scalar Daraja sends as a JSON string in one place and a
// number in another (ResultCode, Amount, BusinessShortCode, expires_in).
// It keeps the text exactly: a number's digits as written, a string's
// contents; null is "".
type Flex string

// UnmarshalJSON accepts a string, a number or null.
func (f *Flex) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return errors.New("empty value")
	case string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = Flex(strings.TrimSpace(s))
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = Flex(n)
	default:
		return fmt.Errorf("want a string or a number, got %.20s", b)
	}
	return nil
}

// String is the text.
func (f Flex) String() string { return string(f) }

// Nairobi is Kenya's time zone, in which Daraja's timestamps are written.
// Kenya has kept UTC+3 without daylight saving since 1960, so a fixed
// zone is exact for every Daraja timestamp, and no time-zone database is
// read at start-up.
var Nairobi = time.FixedZone("EAT", 3*60*60)

// TimestampLayout is Daraja's YYYYMMDDHHmmss.
const TimestampLayout = "20060102150405"

// Timestamp formats t in Nairobi time, as Daraja wants it.
func Timestamp(t time.Time) string { return t.In(Nairobi).Format(TimestampLayout) }

// ParseTimestamp reads a Daraja YYYYMMDDHHmmss as Nairobi time.
func ParseTimestamp(s string) (time.Time, error) {
	t, err := time.ParseInLocation(TimestampLayout, s, Nairobi)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: want YYYYMMDDHHmmss: %w", truncate(s, 20), err)
	}
	return t, nil
}

// STKResult is an STK Push outcome, from the callback or from a query.
type STKResult struct {
	MerchantRequestID string
	CheckoutRequestID string
	// Code is the ResultCode as text ("0", "1032"): the callback sends a
	// number and the query a string.
	Code string
	Desc string
	// Receipt is the MpesaReceiptNumber (success only).
	Receipt string
	// Amount is the amount paid as the callback reported it (success
	// only); nil when absent.
	Amount *WireAmount
	// Phone is the payer's MSISDN as reported (success only).
	Phone string
	// Paid is the TransactionDate, in Nairobi time (zero when absent).
	Paid time.Time
}

// Success reports whether the result is a payment (ResultCode 0).
func (r STKResult) Success() bool { return r.Code == "0" }

type stkCallbackWire struct {
	Body *struct {
		STKCallback *struct {
			MerchantRequestID string `json:"MerchantRequestID"`
			CheckoutRequestID string `json:"CheckoutRequestID"`
			ResultCode        *Flex  `json:"ResultCode"`
			ResultDesc        string `json:"ResultDesc"`
			CallbackMetadata  *struct {
				Item []struct {
					Name  string          `json:"Name"`
					Value json.RawMessage `json:"Value"`
				} `json:"Item"`
			} `json:"CallbackMetadata"`
		} `json:"stkCallback"`
	} `json:"Body"`
}

// ErrMalformed is wrapped when a body Daraja sent cannot be read.
var ErrMalformed = errors.New("malformed body")

// DecodeSTKCallback reads the body Daraja posts to the CallBackURL. The
// metadata items are looked up by name in any order; a missing Balance
// or an odd one never matters. A success without a receipt, or with an
// amount that is not a number, is refused.
func DecodeSTKCallback(b []byte) (STKResult, error) {
	var w stkCallbackWire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return STKResult{}, fmt.Errorf("STK callback: %w: %v", ErrMalformed, err)
	}
	if w.Body == nil || w.Body.STKCallback == nil {
		return STKResult{}, fmt.Errorf("STK callback: %w: no Body.stkCallback", ErrMalformed)
	}
	c := w.Body.STKCallback
	if c.CheckoutRequestID == "" {
		return STKResult{}, fmt.Errorf("STK callback: %w: no CheckoutRequestID", ErrMalformed)
	}
	if c.ResultCode == nil || *c.ResultCode == "" {
		return STKResult{}, fmt.Errorf("STK callback %s: %w: no ResultCode", c.CheckoutRequestID, ErrMalformed)
	}
	r := STKResult{MerchantRequestID: c.MerchantRequestID, CheckoutRequestID: c.CheckoutRequestID,
		Code: string(*c.ResultCode), Desc: c.ResultDesc}
	if c.CallbackMetadata != nil {
		for _, it := range c.CallbackMetadata.Item {
			var v Flex
			if len(it.Value) > 0 {
				if err := json.Unmarshal(it.Value, &v); err != nil {
					if it.Name == "Balance" {
						continue // sometimes an odd shape; never needed
					}
					return STKResult{}, fmt.Errorf("STK callback %s: %w: item %s: %v", c.CheckoutRequestID, ErrMalformed, it.Name, err)
				}
			}
			switch it.Name {
			case "Amount":
				a, err := ParseWireAmount(string(v))
				if err != nil {
					return STKResult{}, fmt.Errorf("STK callback %s: %w: %v", c.CheckoutRequestID, ErrMalformed, err)
				}
				r.Amount = &a
			case "MpesaReceiptNumber":
				r.Receipt = string(v)
			case "PhoneNumber":
				r.Phone = string(v)
			case "TransactionDate":
				if t, err := ParseTimestamp(string(v)); err == nil {
					r.Paid = t
				}
			}
		}
	}
	if r.Success() && r.Receipt == "" {
		return STKResult{}, fmt.Errorf("STK callback %s: %w: success without MpesaReceiptNumber", c.CheckoutRequestID, ErrMalformed)
	}
	return r, nil
}

// C2BPayment is a till or paybill payment as Daraja reports it to the
// validation and confirmation URLs.
type C2BPayment struct {
	TransactionType   string `json:"TransactionType"`
	TransID           string `json:"TransID"`
	TransTime         string `json:"TransTime"`
	TransAmount       Flex   `json:"TransAmount"`
	BusinessShortCode Flex   `json:"BusinessShortCode"`
	BillRefNumber     Flex   `json:"BillRefNumber"`
	InvoiceNumber     Flex   `json:"InvoiceNumber"`
	OrgAccountBalance Flex   `json:"OrgAccountBalance"`
	ThirdPartyTransID Flex   `json:"ThirdPartyTransID"`
	// MSISDN is masked or hashed by Daraja: an opaque display string.
	MSISDN     Flex   `json:"MSISDN"`
	FirstName  string `json:"FirstName"`
	MiddleName string `json:"MiddleName"`
	LastName   string `json:"LastName"`

	// Amount is TransAmount read exactly (filled by DecodeC2B).
	Amount WireAmount `json:"-"`
	// Time is TransTime in Nairobi time, zero when unreadable.
	Time time.Time `json:"-"`
}

// DecodeC2B reads a C2B validation or confirmation body. It needs a
// TransID and an amount that is a number; everything else may be empty.
func DecodeC2B(b []byte) (C2BPayment, error) {
	var p C2BPayment
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("C2B body: %w: %v", ErrMalformed, err)
	}
	p.TransID = strings.TrimSpace(p.TransID)
	if p.TransID == "" {
		return p, fmt.Errorf("C2B body: %w: no TransID", ErrMalformed)
	}
	a, err := ParseWireAmount(string(p.TransAmount))
	if err != nil {
		return p, fmt.Errorf("C2B %s: %w: %v", p.TransID, ErrMalformed, err)
	}
	p.Amount = a
	if t, err := ParseTimestamp(p.TransTime); err == nil {
		p.Time = t
	}
	return p, nil
}

// APIError is Daraja's synchronous error: the envelope
// {"requestId","errorCode","errorMessage"} with the HTTP status, or, when
// the body was empty or not that envelope (an HTML gateway page), just the
// status and the raw bytes.
type APIError struct {
	Status    int
	RequestID string
	Code      string
	Message   string
	// Op is the call that failed ("stk push").
	Op string
	// Raw is the body as received (capped).
	Raw []byte
}

// Error is the call, the status, the code and the message.
func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("daraja %s: HTTP %d: %s", e.Op, e.Status, describeRaw(e.Raw))
	}
	return fmt.Sprintf("daraja %s: HTTP %d: %s %s (request %s)", e.Op, e.Status, e.Code, e.Message, e.RequestID)
}

func describeRaw(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "empty body"
	}
	return fmt.Sprintf("unexpected body %q", truncate(s, 80))
}

// InvalidToken reports whether Daraja refused the access token (the
// client then fetches a new one and retries once).
func (e *APIError) InvalidToken() bool {
	return e.Code == "404.001.03" || e.Code == "400.003.01"
}

// Pending reports the STK Query's "The transaction is being processed":
// the prompt is still open, not a failure.
func (e *APIError) Pending() bool {
	return e.Code == "500.001.1001" && strings.Contains(strings.ToLower(e.Message), "being processed")
}

// RateLimited reports Spike Arrest or quota (500.003.02, 500.003.03):
// retry later, with backoff.
func (e *APIError) RateLimited() bool {
	return e.Code == "500.003.02" || e.Code == "500.003.03"
}

type errorEnvelope struct {
	RequestID    string `json:"requestId"`
	ErrorCode    Flex   `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// DecodeError turns a non-2xx answer into an *APIError, whatever the body.
func DecodeError(op string, status int, body []byte) *APIError {
	e := &APIError{Op: op, Status: status, Raw: body}
	var env errorEnvelope
	if json.Unmarshal(body, &env) == nil {
		e.RequestID, e.Code, e.Message = env.RequestID, string(env.ErrorCode), env.ErrorMessage
	}
	return e
}

// ResultMeaning is what an STK ResultCode means for the cashier, and the
// status the payment ends in.
type ResultMeaning struct {
	Status payment.Status
	Words  string
}

// resultCodes are the STK ResultCodes Daraja documents. Unknown codes are failed.
var resultCodes = map[string]ResultMeaning{
	"0":          {"approved", "paid"},
	"1":          {"declined", "insufficient funds on the customer's M-Pesa"},
	"2":          {"declined", "amount below the M-Pesa minimum"},
	"3":          {"declined", "amount above the M-Pesa maximum"},
	"4":          {"declined", "customer's daily M-Pesa limit reached"},
	"8":          {"failed", "the merchant account is full: alert the owner"},
	"17":         {"declined", "same amount to the same customer within 2 minutes: wait or change the amount"},
	"1001":       {"declined", "the customer's phone is busy with another M-Pesa session: retry in a minute"},
	"1019":       {"timed_out", "the prompt expired before the customer answered"},
	"1025":       {"failed", "M-Pesa could not send the prompt (reference or description too long)"},
	"1032":       {"cancelled", "the customer cancelled the prompt"},
	"1037":       {"timed_out", "the customer's phone could not be reached"},
	"2001":       {"declined", "the customer entered a wrong PIN"},
	"2028":       {"failed", "not permitted for this shortcode: check paybill/till settings"},
	"8006":       {"declined", "the customer's M-Pesa PIN is locked"},
	"9999":       {"failed", "M-Pesa could not send the prompt: retry later"},
	"SFC_IC0003": {"failed", "operator does not exist: check paybill/till settings"},
}

// Meaning returns what a ResultCode means; an unknown code is failed,
// with Daraja's own description.
func Meaning(code, desc string) ResultMeaning {
	if m, ok := resultCodes[code]; ok {
		return m
	}
	w := "unknown M-Pesa result " + code
	if desc != "" {
		w += ": " + desc
	}
	return ResultMeaning{Status: "failed", Words: w}
}
