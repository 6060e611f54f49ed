// Package concert is the codec of the French Concert serial protocol (V2,
// protocol E and E+), as the card terminals behind HiPay's unattended ECR
// connector speak it: the control bytes, frames with their LRC, the V2
// payment request and the V2 answer, and the currencies' numeric codes.
//
// It holds no state and does no I/O beyond reading one frame from a
// reader: the card terminal rail (package terminal) and the terminal
// simulator (package termsim) both build on it, and the simulator imports
// only this package, not the rail.
package concert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"paydesk/payment"
)

// Control bytes of the link layer.
const (
	STX byte = 0x02 // start of a frame's data
	ETX byte = 0x03 // end of a frame's data; the LRC follows
	EOT byte = 0x04 // end of session
	ENQ byte = 0x05 // open a session
	ACK byte = 0x06 // frame or ENQ accepted
	NAK byte = 0x15 // frame refused: send it again
)

// MaxData is the most data bytes a frame may carry.
const MaxData = 512

// MaxNoise is the most bytes ReadFrame skips looking for STX before it
// gives up, so a line that only carries noise cannot hold a reader forever.
const MaxNoise = 2 * MaxData

// Errors of the frame layer, for errors.Is.
var (
	ErrBadLRC        = errors.New("frame LRC does not match")
	ErrFrameTooLong  = errors.New("frame longer than 512 data bytes")
	ErrBadData       = errors.New("frame data holds a control byte")
	ErrBadAnswer     = errors.New("malformed terminal answer")
	ErrBadRequest    = errors.New("invalid payment request")
	ErrNotAFrame     = errors.New("no STX where a frame was expected")
	errNotPrintables = errors.New("not printable ASCII")
)

// LRC is the check byte of a frame: the XOR of every data byte and ETX
// (STX excluded). It may be any value, control bytes included.
func LRC(data []byte) byte {
	l := ETX
	for _, b := range data {
		l ^= b
	}
	return l
}

// Frame wraps data as STX data ETX LRC.
func Frame(data []byte) []byte {
	f := make([]byte, 0, len(data)+3)
	f = append(f, STX)
	f = append(f, data...)
	return append(f, ETX, LRC(data))
}

// ReadFrame reads one frame from r. Bytes before STX are skipped and
// returned in skipped (line noise, to be logged); after MaxNoise of them it
// returns ErrNotAFrame. The byte after ETX is
// always the LRC, whatever its value. A wrong LRC returns the data with
// ErrBadLRC, so the caller can NAK and log what came.
func ReadFrame(r io.ByteReader) (data, skipped []byte, err error) {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, skipped, err
		}
		if b == STX {
			break
		}
		if len(skipped) == MaxNoise {
			return nil, skipped, ErrNotAFrame
		}
		skipped = append(skipped, b)
	}
	for {
		b, err := r.ReadByte()
		if err != nil {
			return data, skipped, fmt.Errorf("frame cut after %d bytes: %w", len(data), err)
		}
		if b == ETX {
			break
		}
		if len(data) == MaxData {
			return data, skipped, ErrFrameTooLong
		}
		data = append(data, b)
	}
	lrc, err := r.ReadByte()
	if err != nil {
		return data, skipped, fmt.Errorf("frame without LRC: %w", err)
	}
	if want := LRC(data); lrc != want {
		return data, skipped, fmt.Errorf("%w: got 0x%02X, computed 0x%02X", ErrBadLRC, lrc, want)
	}
	if bytes.IndexFunc(data, func(r rune) bool { return r < 0x20 || r > 0x7E }) >= 0 {
		return data, skipped, ErrBadData
	}
	return data, skipped, nil
}

// MaxAmount is the largest amount a Concert V2 request carries: 8 digits
// of minor units.
const MaxAmount = 99_999_999

// TxType is the Concert transaction type.
type TxType byte

// The transaction types paydesk sends.
const (
	Debit  TxType = '0'
	Credit TxType = '1' // refund
)

// Request is a Concert V2 payment request.
type Request struct {
	// POS is the cash register number, 1–99.
	POS int
	// Amount in minor units, 1–99,999,999.
	Amount int64
	// FullAnswer asks for the 80-byte answer with the card report.
	FullAnswer bool
	// Type is Debit or Credit.
	Type TxType
	// Currency is the ISO 4217 numeric code, e.g. "978" for EUR.
	Currency string
	// Private is up to 10 printable characters echoed in the answer.
	Private string
	// ProtocolE sends the 26-byte protocol E request (no A/B fields).
	ProtocolE bool
	// ForceOnline asks for online authorisation (B011).
	ForceOnline bool
}

// Encode returns the request's data bytes (34 for E+, 26 for E).
func (q Request) Encode() ([]byte, error) {
	bad := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	if q.POS < 1 || q.POS > 99 {
		return bad("POS number %d is not 1-99", q.POS)
	}
	if q.Amount < 1 || q.Amount > MaxAmount {
		return bad("amount %d is not 1-99999999 minor units", q.Amount)
	}
	if q.Type != Debit && q.Type != Credit {
		return bad("transaction type %q", q.Type)
	}
	if len(q.Currency) != 3 || strings.Trim(q.Currency, "0123456789") != "" {
		return bad("currency %q is not an ISO 4217 numeric code", q.Currency)
	}
	if len(q.Private) > 10 || printable(q.Private) != nil {
		return bad("private data %q is not up to 10 printable characters", q.Private)
	}
	ind := byte('0')
	if q.FullAnswer {
		ind = '1'
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%02d%08d%c1%c%s%-10s", q.POS, q.Amount, ind, q.Type, q.Currency, q.Private)
	if !q.ProtocolE {
		b.WriteString("A010B01")
		if q.ForceOnline {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.Bytes(), nil
}

func printable(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return errNotPrintables
		}
	}
	return nil
}

// Answer is the terminal's V2 answer.
type Answer struct {
	POS int
	// Status is '0' approved, '7' refused or not completed, others unknown.
	Status byte
	Amount int64
	// Mode is the payment mode actually used ('1' card).
	Mode byte
	// Report is the card report of a full answer: a PAN, masked by most
	// terminals but not all. Never log or show it; use Last4.
	Report   string
	Currency string
	Private  string
}

// Last4 is the most of the card number paydesk keeps or shows.
func (a Answer) Last4() string { return payment.MaskCard(a.Report) }

// Approved reports whether the terminal accepted the payment: only '0'.
func (a Answer) Approved() bool { return a.Status == '0' }

// Encode returns the answer's data bytes as a terminal sends them: 80
// with the report padded with spaces to 55 characters when full, else 25.
// The simulator answers with it, so both sides share one definition.
func (a Answer) Encode(full bool) ([]byte, error) {
	bad := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadAnswer, fmt.Sprintf(format, args...))
	}
	if a.POS < 0 || a.POS > 99 {
		return bad("POS number %d is not 0-99", a.POS)
	}
	if a.Amount < 0 || a.Amount > 99_999_999 {
		return bad("amount %d is not 0-99999999 minor units", a.Amount)
	}
	if len(a.Currency) != 3 || strings.Trim(a.Currency, "0123456789") != "" {
		return bad("currency %q is not an ISO 4217 numeric code", a.Currency)
	}
	if len(a.Private) > 10 || printable(a.Private) != nil || len(a.Report) > 55 || printable(a.Report) != nil ||
		printable(string([]byte{a.Status, a.Mode})) != nil {
		return bad("fields are not printable ASCII of their sizes")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%02d%c%08d%c", a.POS, a.Status, a.Amount, a.Mode)
	if full {
		fmt.Fprintf(&b, "%-55s", a.Report)
	}
	fmt.Fprintf(&b, "%s%-10s", a.Currency, a.Private)
	return b.Bytes(), nil
}

// ParseAnswer decodes a 25-byte (short) or 80-byte (full) answer.
func ParseAnswer(data []byte) (Answer, error) {
	var a Answer
	if len(data) != 25 && len(data) != 80 {
		return a, fmt.Errorf("%w: %d bytes, want 25 or 80", ErrBadAnswer, len(data))
	}
	if err := printable(string(data)); err != nil {
		return a, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	num := func(field string, s []byte) (int64, error) {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || n < 0 || strings.Trim(string(s), "0123456789") != "" {
			return 0, fmt.Errorf("%w: %s %q is not a number", ErrBadAnswer, field, s)
		}
		return n, nil
	}
	pos, err := num("POS number", data[0:2])
	if err != nil {
		return a, err
	}
	a.POS, a.Status = int(pos), data[2]
	if a.Amount, err = num("amount", data[3:11]); err != nil {
		return a, err
	}
	a.Mode = data[11]
	rest := data[12:]
	if len(data) == 80 {
		// Padding is spaces or zeros; zeros are trimmed only past the
		// longest PAN (19 digits), so a PAN ending in 0 keeps its digit.
		r := strings.TrimRight(string(data[12:67]), " ")
		for len(r) > 19 && r[len(r)-1] == '0' {
			r = r[:len(r)-1]
		}
		a.Report = r
		rest = data[67:]
	}
	a.Currency, a.Private = string(rest[0:3]), string(rest[3:13])
	if strings.Trim(a.Currency, "0123456789") != "" {
		return a, fmt.Errorf("%w: currency %q", ErrBadAnswer, a.Currency)
	}
	return a, nil
}

// ParseRequest decodes a request's data bytes: 34 for protocol E+, 26 for
// protocol E. The terminal simulator reads the driver's requests with it,
// so both sides of the link are checked against one definition.
func ParseRequest(data []byte) (Request, error) {
	var q Request
	bad := func(format string, args ...any) (Request, error) {
		return q, fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	switch len(data) {
	case 34:
	case 26:
		q.ProtocolE = true
	default:
		return bad("%d bytes, want 34 (E+) or 26 (E)", len(data))
	}
	if err := printable(string(data)); err != nil {
		return bad("%v", err)
	}
	digits := func(s []byte) bool { return len(s) > 0 && strings.Trim(string(s), "0123456789") == "" }
	if !digits(data[0:2]) || !digits(data[2:10]) {
		return bad("POS number or amount %q is not digits", data[0:10])
	}
	pos, _ := strconv.Atoi(string(data[0:2]))
	amount, _ := strconv.ParseInt(string(data[2:10]), 10, 64)
	q.POS, q.Amount = pos, amount
	switch data[10] {
	case '0':
	case '1':
		q.FullAnswer = true
	default:
		return bad("answer flag %q", data[10])
	}
	if data[11] != '1' {
		return bad("payment mode %q is not card", data[11])
	}
	q.Type = TxType(data[12])
	q.Currency = string(data[13:16])
	q.Private = strings.TrimRight(string(data[16:26]), " ")
	if !q.ProtocolE {
		switch string(data[26:34]) {
		case "A010B010":
		case "A010B011":
			q.ForceOnline = true
		default:
			return bad("delay/authorisation fields %q, want A010B010 or A010B011", data[26:34])
		}
	}
	if _, err := q.Encode(); err != nil {
		return q, err
	}
	return q, nil
}

// Currency is an ISO 4217 currency as the terminal and the HTTP API need
// it: the alphabetic code people and kiosk software use, the numeric code
// on the wire, and the number of decimals of its minor unit.
type Currency struct {
	Alpha    string
	Numeric  string
	Decimals int
}

// currencies are the ISO 4217 currencies card terminals in paydesk's
// markets are set up for. A currency outside the list is refused rather
// than guessed.
var currencies = []Currency{
	{"EUR", "978", 2}, {"USD", "840", 2}, {"GBP", "826", 2}, {"CHF", "756", 2},
	{"SEK", "752", 2}, {"NOK", "578", 2}, {"DKK", "208", 2}, {"PLN", "985", 2},
	{"CZK", "203", 2}, {"HUF", "348", 2}, {"RON", "946", 2}, {"CAD", "124", 2},
	{"AUD", "036", 2}, {"MYR", "458", 2}, {"SGD", "702", 2}, {"KES", "404", 2},
	{"XPF", "953", 0}, {"XOF", "952", 0}, {"JPY", "392", 0}, {"MAD", "504", 2},
}

// ErrUnknownCurrency is wrapped when a currency code is not one paydesk
// knows the ISO 4217 numeric code and decimals of.
var ErrUnknownCurrency = errors.New("unknown currency")

// LookupCurrency finds a currency by its alphabetic or numeric code.
func LookupCurrency(code string) (Currency, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	for _, cur := range currencies {
		if cur.Alpha == c || cur.Numeric == c {
			return cur, nil
		}
	}
	return Currency{}, fmt.Errorf("%w: %q is not an ISO 4217 code paydesk knows", ErrUnknownCurrency, code)
}
