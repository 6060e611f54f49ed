package screens

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// Message types of the PintoAndroid display protocol (its first document and
// the app's later one).
const (
	TypeScreenChange     = "SCREEN_CHANGE"
	TypeUserAction       = "USER_ACTION"
	TypeError            = "ERROR"
	TypeStatusUpdate     = "STATUS_UPDATE"
	TypeDeviceInfo       = "DEVICE_INFO"
	TypeCardCheckResult  = "CARD_CHECK_RESULT"
	TypePaymentResult    = "PAYMENT_RESULT"
	TypeReversalResult   = "REVERSAL_RESULT"
	TypeLimitCheckResult = "LIMIT_CHECK_RESULT"
)

// Screen names a screen of the display, or (in a USER_ACTION) what the
// customer did.
type Screen string

// The screens the server shows.
const (
	ScreenAmountSelect  Screen = "AMOUNT_SELECT"
	ScreenKeypad        Screen = "KEYPAD"
	ScreenPaymentMethod Screen = "PAYMENT_METHOD"
	ScreenProcessing    Screen = "PROCESSING"
	ScreenSuccess       Screen = "SUCCESS"
	ScreenFailed        Screen = "FAILED"
	ScreenLimitError    Screen = "LIMIT_ERROR"
	ScreenPrintTicket   Screen = "PRINT_TICKET"
	ScreenCollectTicket Screen = "COLLECT_TICKET"
	ScreenThankYou      Screen = "THANK_YOU"
	ScreenDeviceError   Screen = "DEVICE_ERROR"
	// ScreenReceiptQuestion asks whether the customer wants a card
	// receipt (the app's later flow; on with Options.ReceiptQuestion).
	ScreenReceiptQuestion Screen = "RECEIPT_QUESTION"
)

// The screens a client names in its USER_ACTIONs beyond the ones above.
const (
	ScreenReset           Screen = "RESET"
	ScreenCancel          Screen = "CANCEL"
	ScreenReceiptResponse Screen = "RECEIPT_RESPONSE"
	ScreenDeviceIP        Screen = "DEVICE_IP"
	ScreenDeviceSerial    Screen = "DEVICE_SERIAL"
	ScreenInfo            Screen = "INFO_SCREEN"
)

// Error codes the server puts in an ERROR message's data.errorCode.
const (
	CodeTimeout            = "TIMEOUT"
	CodeInvalidMessage     = "INVALID_MESSAGE"
	CodeInvalidAmount      = "INVALID_AMOUNT"
	CodeUnknownMethod      = "UNKNOWN_METHOD"
	CodeUnknownTransaction = "UNKNOWN_TRANSACTION"
	CodeWrongScreen        = "WRONG_SCREEN"
	CodeBusy               = "PAYMENT_IN_PROGRESS"
)

// Message is one frame as the server sends it. Every field is always
// present: the app's Moshi classes declare screen and transactionId as
// non-null strings and timestamp as a Long, so a missing one is a parse
// failure on the tablet.
type Message struct {
	MessageType   string `json:"messageType"`
	Screen        Screen `json:"screen"`
	Data          Data   `json:"data"`
	TransactionID string `json:"transactionId"`
	// Timestamp is milliseconds since the Unix epoch.
	Timestamp int64 `json:"timestamp"`
}

// Data is a message's data object. The server builds it only with the
// constructors of this package, which put whole numbers (int64) where the
// app parses an Int, never floats.
type Data map[string]any

// Encode writes m as the JSON the app parses; data is {} when empty.
func (m Message) Encode() []byte {
	if m.Data == nil {
		m.Data = Data{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Data holds only strings, bools, int64s and slices of them.
		panic(fmt.Sprintf("screens: encoding %s: %v", m.Screen, err))
	}
	return b
}

// Action is what a client said, decoded and checked for shape. Values are
// checked against the configuration by the session, not here.
type Action struct {
	// Kind says what the client asked.
	Kind ActionKind
	// MessageType and Screen are as received.
	MessageType string
	Screen      Screen
	// TxnID is the client's transactionId (the server checks it against
	// the one it issued where that matters).
	TxnID string
	// Amount is selectedAmount in whole units of the currency (pounds,
	// ringgit), as the app sends it: the app's field is an Int.
	Amount int64
	// SelectionMethod is PRESET_BUTTON, OTHER, CUSTOM, KEYPAD, YES or NO
	// (upper-cased; "" when absent).
	SelectionMethod string
	// Method is the payment method chosen (selectionMethod in the app,
	// selectedMethod in the protocol's first document).
	Method string
	// Device and IP are what a DEVICE_INFO reported.
	Device, IP string
	// Reason is a CANCEL's errorMessage (the app's idle timeout), or a
	// result's error message.
	Reason string
	// Code is a result's errorCode.
	Code string
	// Details are a PAYMENT_RESULT's paymentDetails (Result,
	// BankResultCode, Message, RequesterTransRefNum …), strings only.
	Details map[string]string
}

// ActionKind says what an Action asks of the server.
type ActionKind int

// The kinds of action.
const (
	// ActPing is the app's bare {"ping":true} liveness frame.
	ActPing ActionKind = iota + 1
	// ActReset asks for the amount screen (the app expects it within 3 s).
	ActReset
	// ActCancel abandons the customer's selection.
	ActCancel
	// ActAmount chooses an amount (preset or custom).
	ActAmount
	// ActOther asks for the keypad (selectedAmount -1, OTHER).
	ActOther
	// ActMethod chooses a payment method.
	ActMethod
	// ActDeviceInfo reports the device's serial number and address.
	ActDeviceInfo
	// ActReceipt answers a receipt question (YES/NO).
	ActReceipt
	// ActCardCheck is the app's local-payment mode asking the daily limit
	// for a card it read (CARD_CHECK_RESULT with selectedAmount); the
	// server answers LIMIT_CHECK_RESULT.
	ActCardCheck
	// ActPaymentResult is the outcome of a payment the app took on its own
	// terminal (PAYMENT_RESULT, screen SUCCESS or FAILED).
	ActPaymentResult
	// ActReport is any other report of the app's local-payment mode
	// (REVERSAL_RESULT): journaled as evidence, no screen changes.
	ActReport
)

// ErrBadMessage is wrapped by every decoding refusal.
var ErrBadMessage = errors.New("bad message")

// DecodeError says why a frame was refused, with the errorCode sent back
// in the ERROR message.
type DecodeError struct {
	Code   string
	Reason string
}

// Error is the reason, written for the ERROR message's errorMessage.
func (e *DecodeError) Error() string { return e.Reason }

// Unwrap lets errors.Is(err, ErrBadMessage) match.
func (e *DecodeError) Unwrap() error { return ErrBadMessage }

func bad(code, format string, args ...any) error {
	return &DecodeError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// maxWhole bounds any amount a client may name, far above any limit, so
// that converting to minor units cannot overflow.
const maxWhole = 1_000_000_000

type inFrame struct {
	MessageType   *string         `json:"messageType"`
	Screen        *string         `json:"screen"`
	Data          json.RawMessage `json:"data"`
	TransactionID *string         `json:"transactionId"`
	Timestamp     json.RawMessage `json:"timestamp"`
	Ping          json.RawMessage `json:"ping"`
}

type inData struct {
	SelectedAmount     json.RawMessage `json:"selectedAmount"`
	SelectionMethod    *string         `json:"selectionMethod"`
	SelectedMethod     *string         `json:"selectedMethod"`
	ErrorMessage       *string         `json:"errorMessage"`
	DeviceIPAddress    *string         `json:"deviceIpAddress"`
	DeviceSerialNumber *string         `json:"deviceSerialNumber"`
	ErrorCode          *string         `json:"errorCode"`
	PaymentDetails     map[string]any  `json:"paymentDetails"`
}

// Decode reads one inbound text frame. It accepts both shapes of the
// protocol: the first document's (selectedMethod; KEYPAD/KEYPAD for a
// custom amount) and the real app's (selectionMethod; AMOUNT_SELECT/CUSTOM), OTHER with
// -1 for the keypad, and the app's bare {"ping":true}. Anything else is
// refused with a *DecodeError.
func Decode(frame []byte) (Action, error) {
	if !utf8.Valid(frame) {
		return Action{}, bad(CodeInvalidMessage, "frame is not UTF-8 text")
	}
	trimmed := bytes.TrimSpace(frame)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Action{}, bad(CodeInvalidMessage, "frame is not a JSON object")
	}
	// Unmarshal refuses anything after the object ("invalid character
	// after top-level value"), as a Decoder's More does not for } or ].
	var f inFrame
	if err := json.Unmarshal(trimmed, &f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// Only messageType, screen and transactionId are typed here.
			return Action{}, bad(CodeInvalidMessage, "%s must be a string, not a JSON %s", te.Field, te.Value)
		}
		return Action{}, bad(CodeInvalidMessage, "frame is not valid JSON: %v", err)
	}
	if f.MessageType == nil {
		if f.Ping != nil {
			return Action{Kind: ActPing}, nil
		}
		return Action{}, bad(CodeInvalidMessage, "messageType is missing")
	}
	a := Action{MessageType: *f.MessageType}
	if f.Screen != nil {
		a.Screen = Screen(*f.Screen)
	}
	if f.TransactionID != nil {
		a.TxnID = *f.TransactionID
	}
	if len(a.TxnID) > 128 {
		return Action{}, bad(CodeInvalidMessage, "transactionId is longer than 128 bytes")
	}
	if len(f.Timestamp) > 0 && !isNull(f.Timestamp) {
		if _, err := strconv.ParseFloat(string(f.Timestamp), 64); err != nil {
			return Action{}, bad(CodeInvalidMessage, "timestamp %s is not a number", trunc(string(f.Timestamp)))
		}
	}
	var d inData
	if len(f.Data) > 0 && !isNull(f.Data) {
		if f.Data[0] != '{' {
			return Action{}, bad(CodeInvalidMessage, "data is not a JSON object")
		}
		if err := json.Unmarshal(f.Data, &d); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				want := "a string"
				if te.Type != nil && te.Type.Kind() == reflect.Map {
					want = "an object"
				}
				return Action{}, bad(CodeInvalidMessage, "data.%s must be %s, not a JSON %s", te.Field, want, te.Value)
			}
			return Action{}, bad(CodeInvalidMessage, "data: %v", err)
		}
	}
	switch a.MessageType {
	case TypeUserAction:
		return decodeUserAction(a, d)
	case TypeDeviceInfo:
		return decodeDeviceInfo(a, d)
	case TypeCardCheckResult:
		if d.SelectedAmount == nil || isNull(d.SelectedAmount) {
			return Action{}, bad(CodeInvalidAmount, "CARD_CHECK_RESULT: selectedAmount is missing")
		}
		n, err := wholeNumber(d.SelectedAmount)
		if err != nil || n <= 0 {
			return Action{}, bad(CodeInvalidAmount, "CARD_CHECK_RESULT: selectedAmount must be a positive whole number")
		}
		a.Kind, a.Amount = ActCardCheck, n
		return a, nil
	case TypePaymentResult:
		if a.Screen != ScreenSuccess && a.Screen != ScreenFailed {
			return Action{}, bad(CodeInvalidMessage, "PAYMENT_RESULT wants screen SUCCESS or FAILED, not %q", trunc(string(a.Screen)))
		}
		a.Kind, a.Reason, a.Code = ActPaymentResult, trunc(str(d.ErrorMessage)), trunc(str(d.ErrorCode))
		a.Details = details(d.PaymentDetails)
		return a, nil
	case TypeReversalResult:
		a.Kind, a.Reason, a.Code = ActReport, trunc(str(d.ErrorMessage)), trunc(str(d.ErrorCode))
		a.Details = details(d.PaymentDetails)
		return a, nil
	case "":
		return Action{}, bad(CodeInvalidMessage, "messageType is empty")
	}
	return Action{}, bad(CodeInvalidMessage, "messageType %q is not one a display sends", trunc(a.MessageType))
}

func decodeUserAction(a Action, d inData) (Action, error) {
	a.SelectionMethod = upper(str(d.SelectionMethod))
	switch a.Screen {
	case ScreenReset:
		a.Kind = ActReset
	case ScreenCancel:
		a.Kind, a.Reason = ActCancel, str(d.ErrorMessage)
	case ScreenAmountSelect, ScreenKeypad:
		if d.SelectedAmount == nil || isNull(d.SelectedAmount) {
			return Action{}, bad(CodeInvalidAmount, "%s: selectedAmount is missing", a.Screen)
		}
		n, err := wholeNumber(d.SelectedAmount)
		if err != nil {
			return Action{}, bad(CodeInvalidAmount, "selectedAmount: %v", err)
		}
		switch {
		case a.SelectionMethod == "OTHER" || n == -1:
			// -1 is the "Other" button whatever its label: apps before
			// v2.0 send it as CUSTOM.
			if n != -1 {
				return Action{}, bad(CodeInvalidAmount, "selectionMethod OTHER wants selectedAmount -1, not %d", n)
			}
			a.Kind = ActOther
			return a, nil
		case a.Screen == ScreenKeypad && (a.SelectionMethod == "KEYPAD" || a.SelectionMethod == "" || a.SelectionMethod == "CUSTOM"):
		case a.Screen == ScreenAmountSelect && (a.SelectionMethod == "PRESET_BUTTON" || a.SelectionMethod == "CUSTOM" || a.SelectionMethod == "KEYPAD" || a.SelectionMethod == ""):
		default:
			return Action{}, bad(CodeInvalidMessage, "selectionMethod %q is not one of PRESET_BUTTON, CUSTOM, KEYPAD, OTHER on %s", trunc(a.SelectionMethod), a.Screen)
		}
		if n <= 0 {
			return Action{}, bad(CodeInvalidAmount, "selectedAmount must be positive, not %d", n)
		}
		if a.SelectionMethod == "" {
			a.SelectionMethod = "PRESET_BUTTON"
			if a.Screen == ScreenKeypad {
				a.SelectionMethod = "KEYPAD"
			}
		}
		a.Kind, a.Amount = ActAmount, n
	case ScreenPaymentMethod:
		m := str(d.SelectionMethod)
		if m == "" {
			m = str(d.SelectedMethod)
		}
		if m == "" {
			return Action{}, bad(CodeUnknownMethod, "PAYMENT_METHOD: neither selectionMethod nor selectedMethod is set")
		}
		if len(m) > 64 {
			return Action{}, bad(CodeUnknownMethod, "payment method name longer than 64 bytes")
		}
		a.Kind, a.Method = ActMethod, upper(m)
	case ScreenReceiptResponse:
		if a.SelectionMethod != "YES" && a.SelectionMethod != "NO" {
			return Action{}, bad(CodeInvalidMessage, "RECEIPT_RESPONSE wants selectionMethod YES or NO, not %q", trunc(a.SelectionMethod))
		}
		a.Kind = ActReceipt
	case ScreenDeviceSerial, ScreenDeviceIP, ScreenInfo:
		return decodeDeviceInfo(a, d)
	case "":
		return Action{}, bad(CodeInvalidMessage, "USER_ACTION without a screen")
	default:
		return Action{}, bad(CodeInvalidMessage, "USER_ACTION on unknown screen %q", trunc(string(a.Screen)))
	}
	return a, nil
}

// decodeDeviceInfo reads the device's serial and address, sent as
// DEVICE_INFO or as a USER_ACTION on DEVICE_SERIAL, DEVICE_IP or
// INFO_SCREEN.
func decodeDeviceInfo(a Action, d inData) (Action, error) {
	a.Kind = ActDeviceInfo
	a.Device, a.IP = str(d.DeviceSerialNumber), str(d.DeviceIPAddress)
	if len(a.Device) > 128 || len(a.IP) > 64 {
		return Action{}, bad(CodeInvalidMessage, "device serial or address too long")
	}
	return a, nil
}

// details keeps the string values of paymentDetails (at most 32, each
// cut short): they are evidence for the journal, never trusted.
func details(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, min(len(m), 32))
	for k, v := range m {
		if s, ok := v.(string); ok && len(out) < 32 {
			out[trunc(k)] = trunc(s)
		}
	}
	return out
}

// wholeNumber reads a JSON number that must be an integer: 60 and 60.0
// are 60 (Moshi writes an Int as 60; a peer in JavaScript may write
// 60.0), 60.5, 1e400, "60" and true are refused.
func wholeNumber(raw json.RawMessage) (int64, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s[0] == '"' || s == "true" || s == "false" || s == "null" || s[0] == '[' || s[0] == '{' {
		return 0, fmt.Errorf("%s is not a number", trunc(s))
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > maxWhole || n < -maxWhole {
			return 0, fmt.Errorf("%d is out of range", n)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not a number", trunc(s))
	}
	if f != float64(int64(f)) || f > maxWhole || f < -maxWhole {
		return 0, fmt.Errorf("%s is not a whole number in range", trunc(s))
	}
	return int64(f), nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// trunc keeps client text in messages and logs short.
func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
