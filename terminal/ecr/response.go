package ecr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"paydesk/payment"
	"paydesk/terminal/concert"
)

// The response statuses. HiPay's document shows only "Success"; the others are
// paydesk's choice, one per final outcome, so kiosk software that tests
// status == "Success" keeps working and can tell the rest apart.
const (
	StatusSuccess   = "Success"   // approved
	StatusRefused   = "Refused"   // declined by the terminal or the card
	StatusCancelled = "Cancelled" // cancelled (before, or confirmed by, the terminal)
	StatusTimeout   = "Timeout"   // the terminal never answered in time
	StatusFailed    = "Failed"    // the payment could not run (terminal not ready, link error)
	StatusUnknown   = "Unknown"   // the outcome must be checked on the terminal
	StatusError     = "Error"     // the request itself was refused (4xx/5xx)
	// StatusCancelRequested answers GET /cancel: the cancel is asked; the
	// payment's own answer says whether the terminal cancelled it.
	StatusCancelRequested = "CancelRequested"
)

// APIError is the "error" member of a response. HiPay's document shows only
// null; paydesk puts an object there otherwise: a stable machine code and
// a message for people.
type APIError struct {
	// Code is one of the Code constants, or a payment status ("declined",
	// "timed_out", …) for a payment that ran and did not succeed.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of refused requests.
const (
	CodeUnauthorized = "unauthorized"
	CodeBadRequest   = "bad_request"
	CodeTooLarge     = "body_too_large"
	CodeMediaType    = "unsupported_media_type"
	CodeBusy         = "busy"
	CodeUnavailable  = "terminal_unavailable"
	CodeNotSupported = "not_supported"
	CodeNotFound     = "not_found"
	CodeMethod       = "method_not_allowed"
	CodeNoPayment    = "no_payment_in_progress"
	CodeInternal     = "internal_error"
)

// Receipt holds the receipt fields of HiPay's document that paydesk knows from a
// Concert V2 answer, with HiPay's names and formats. Fields HiPay
// shows that Concert V2 does not carry (SIRET, TASA, contractNumber,
// crypto, authorizationNumber, AID, readingMode, counter-value, …) are
// left out rather than invented.
type Receipt struct {
	// Acceptor is the merchant name, from Options.Acceptor (omitted when
	// not configured).
	Acceptor string `json:"acceptor,omitempty"`
	// LocalDate is the date of the terminal's answer as DDMMYY, and
	// LocalTime its time as HHMMSS, in Options.Location. HiPay's sample
	// ("030420", "083011") fits DDMMYY, the French receipt order.
	LocalDate string `json:"localDate"`
	LocalTime string `json:"localTime"`
	// TransactionType is "01", HiPay's value for a debit (its sample's
	// ticket says DEBIT); the HTTP API takes only debits.
	TransactionType string `json:"transactionType"`
	// PrimaryAccountNumber is the card number as the driver journaled
	// it, masked: at most the first six and last four digits show, as in
	// HiPay's "123456XXXXXX7890". paydesk's driver keeps only the last
	// four ("XXXXXXXXXXXX1234"). Empty when the terminal sent no card
	// report (a refusal, a cheque).
	PrimaryAccountNumber string `json:"primaryAccountNumber"`
	// CurrencyNumCode, CurrencyAlphaCode and CurrencyFractionPart describe
	// the currency: "978", "EUR", "2".
	CurrencyNumCode      string `json:"currencyNumCode"`
	CurrencyAlphaCode    string `json:"currencyAlphaCode"`
	CurrencyFractionPart string `json:"currencyFractionPart"`
	// Amount is the amount the terminal echoed, in minor units on 8
	// digits ("00000899").
	Amount string `json:"amount"`
	// Label is the card brand guessed from the card number's first
	// digits when they are known, padded to 16 like HiPay's
	// "Mastercard      "; "CHEQUE" for a cheque; "CARTE" when the brand
	// is not known (always, while the driver keeps only the last four
	// digits: Concert V2 has no brand or AID field).
	Label string `json:"label"`
}

// PaymentResponse is one element of the payment response array (HiPay's connector
// answers with an array of one object). The request's amount, currency,
// orderId, basket, customer and customData are echoed as received (null
// when absent).
type PaymentResponse struct {
	Status string    `json:"status"`
	Error  *APIError `json:"error"`
	// Receipt is null when the terminal gave no answer (timeout, failure).
	Receipt *Receipt `json:"receipt"`
	// Ticket is the customer ticket as '|'-separated lines, like
	// HiPay's; "" when there is no receipt.
	Ticket     string          `json:"ticket"`
	Amount     json.Number     `json:"amount"`
	Currency   string          `json:"currency"`
	OrderID    string          `json:"orderId"`
	Basket     json.RawMessage `json:"basket"`
	Customer   json.RawMessage `json:"customer"`
	CustomData json.RawMessage `json:"customData"`
	// NotificationHipaySent tells whether the result reached the
	// notification endpoint within Options.NotifyWait. It is absent from
	// the notification itself.
	NotificationHipaySent *bool `json:"notificationHipaySent,omitempty"`
	// TransactionID is paydesk's id of the payment in its journal (an
	// addition to HiPay's shape), for reconciliation.
	TransactionID string `json:"transactionId,omitempty"`
}

// outcome is how a payment ended, as the driver journaled it.
type outcome struct {
	TxnID  string
	Status payment.Status
	// Result and Raw are the final event's (Raw: the terminal's answer
	// frame, card number already masked by the driver).
	Result *payment.Result
	Raw    []byte
	Detail string
	Time   time.Time
}

// responseStatus maps a journal status to the response's status.
func responseStatus(st payment.Status) string {
	switch st {
	case payment.StatusApproved:
		return StatusSuccess
	case payment.StatusDeclined:
		return StatusRefused
	case payment.StatusCancelled:
		return StatusCancelled
	case payment.StatusTimedOut:
		return StatusTimeout
	case payment.StatusFailed:
		return StatusFailed
	}
	return StatusUnknown
}

// buildResponse turns an outcome into HiPay's response shape.
func buildResponse(pr PaymentRequest, out outcome, acceptor string, loc *time.Location) PaymentResponse {
	resp := PaymentResponse{
		Status:        responseStatus(out.Status),
		Amount:        pr.AmountText,
		Currency:      pr.Currency.Alpha,
		OrderID:       pr.OrderID,
		Basket:        pr.Basket,
		Customer:      pr.Customer,
		CustomData:    pr.CustomData,
		TransactionID: out.TxnID,
	}
	if out.Status != payment.StatusApproved {
		msg := out.Detail
		if out.Result != nil && out.Result.Reason != "" {
			msg = out.Result.Reason
		}
		if msg == "" {
			msg = string(out.Status)
		}
		resp.Error = &APIError{Code: string(out.Status), Message: msg}
	}
	a, ok := answerOf(out.Raw)
	if !ok {
		return resp
	}
	if loc == nil {
		loc = time.Local
	}
	t := out.Time.In(loc)
	pan := maskReport(a)
	rc := &Receipt{
		Acceptor:             acceptor,
		LocalDate:            t.Format("020106"),
		LocalTime:            t.Format("150405"),
		TransactionType:      "01",
		PrimaryAccountNumber: pan,
		CurrencyNumCode:      pr.Currency.Numeric,
		CurrencyAlphaCode:    pr.Currency.Alpha,
		CurrencyFractionPart: fmt.Sprint(pr.Currency.Decimals),
		Amount:               fmt.Sprintf("%08d", a.Amount),
		Label:                fmt.Sprintf("%-16s", label(a, pan)),
	}
	if cur, err := concert.LookupCurrency(a.Currency); err == nil {
		rc.CurrencyNumCode, rc.CurrencyAlphaCode, rc.CurrencyFractionPart = cur.Numeric, cur.Alpha, fmt.Sprint(cur.Decimals)
	}
	resp.Receipt = rc
	resp.Ticket = ticket(rc, a, out.Status, t)
	return resp
}

// answerOf finds the terminal's answer in a final event's raw bytes (the
// frame as received, possibly with noise around it).
func answerOf(raw []byte) (concert.Answer, bool) {
	i := bytes.IndexByte(raw, concert.STX)
	if i < 0 {
		return concert.Answer{}, false
	}
	j := bytes.IndexByte(raw[i+1:], concert.ETX)
	if j < 0 {
		return concert.Answer{}, false
	}
	a, err := concert.ParseAnswer(raw[i+1 : i+1+j])
	return a, err == nil
}

// maskReport keeps at most the first six and the last four characters of
// a card report (the first six only for a full-length number, 13 digits
// or more), as HiPay's "123456XXXXXX7890"; everything else becomes 'X'.
// A report the driver or terminal already masked keeps its X's.
func maskReport(a concert.Answer) string {
	if a.Mode == 'C' {
		return "" // a cheque's CMC7 line is not a card number
	}
	r := strings.TrimSpace(a.Report)
	isCard := func(c byte) bool { return c >= '0' && c <= '9' || c == 'X' || c == '*' || c == '#' }
	n := 0
	for i := 0; i < len(r); i++ {
		if isCard(r[i]) {
			n++
		}
	}
	head := 0
	if n >= 13 {
		head = 6
	}
	out := []byte(r)
	pos := 0
	for i, c := range out {
		if !isCard(c) {
			continue
		}
		if (pos >= head && pos < n-4) || c == '*' || c == '#' {
			out[i] = 'X'
		}
		pos++
	}
	return string(out)
}

// label guesses the brand from the card number's first digits.
func label(a concert.Answer, pan string) string {
	if a.Mode == 'C' {
		return "CHEQUE"
	}
	d := pan
	if len(d) >= 2 && d[0] >= '0' && d[0] <= '9' && d[1] >= '0' && d[1] <= '9' {
		switch {
		case d[0] == '4':
			return "Visa"
		case d[:2] >= "51" && d[:2] <= "55", d[:2] >= "22" && d[:2] <= "27":
			return "Mastercard"
		case d[:2] == "34" || d[:2] == "37":
			return "American Express"
		case d[:2] == "62":
			return "UnionPay"
		}
	}
	return "CARTE"
}

// ticket writes the customer ticket as '|'-separated lines, after
// HiPay's sample, from the fields paydesk knows.
func ticket(rc *Receipt, a concert.Answer, st payment.Status, t time.Time) string {
	var lines []string
	if a.Mode == 'C' {
		lines = append(lines, "CHEQUE")
	} else {
		lines = append(lines, "CARTE BANCAIRE", strings.TrimSpace(rc.Label))
	}
	lines = append(lines, "LE "+t.Format("02/01/06")+" A "+t.Format("15:04:05"))
	if rc.Acceptor != "" {
		lines = append(lines, rc.Acceptor)
	}
	if rc.PrimaryAccountNumber != "" {
		lines = append(lines, rc.PrimaryAccountNumber)
	}
	cur, err := concert.LookupCurrency(a.Currency)
	amount := fmt.Sprint(a.Amount)
	if err == nil {
		amount = strings.Replace(formatMajor(a.Amount, cur.Decimals), ".", ",", 1) + " " + cur.Alpha
	}
	lines = append(lines, "MONTANT:"+amount, "DEBIT")
	if st == payment.StatusApproved {
		lines = append(lines, "TICKET CLIENT A CONSERVER")
	} else {
		lines = append(lines, "PAIEMENT REFUSE")
	}
	return strings.Join(lines, "|") + "||"
}

// marshalJSON encodes v without HTML escaping (the kiosk reads the
// ticket text as is).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
