package screens

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeBothShapes(t *testing.T) {
	for _, tc := range []struct {
		name, frame string
		want        Action
	}{
		{"the app's ping", `{"ping":true}`, Action{Kind: ActPing}},
		{"RESET", `{"messageType":"USER_ACTION","screen":"RESET","data":{},"transactionId":"u-1","timestamp":1}`,
			Action{Kind: ActReset, MessageType: TypeUserAction, Screen: ScreenReset, TxnID: "u-1"}},
		{"preset", `{"messageType":"USER_ACTION","screen":"AMOUNT_SELECT","data":{"selectedAmount":60,"selectionMethod":"PRESET_BUTTON"},"transactionId":"f","timestamp":1619456790000}`,
			Action{Kind: ActAmount, MessageType: TypeUserAction, Screen: ScreenAmountSelect, TxnID: "f", Amount: 60, SelectionMethod: "PRESET_BUTTON"}},
		{"OTHER with -1", `{"messageType":"USER_ACTION","screen":"AMOUNT_SELECT","data":{"selectedAmount":-1,"selectionMethod":"OTHER"},"transactionId":"f"}`,
			Action{Kind: ActOther, MessageType: TypeUserAction, Screen: ScreenAmountSelect, TxnID: "f", SelectionMethod: "OTHER"}},
		{"first document's KEYPAD/KEYPAD", `{"messageType":"USER_ACTION","screen":"KEYPAD","data":{"selectedAmount":75,"selectionMethod":"KEYPAD"},"transactionId":"f"}`,
			Action{Kind: ActAmount, MessageType: TypeUserAction, Screen: ScreenKeypad, TxnID: "f", Amount: 75, SelectionMethod: "KEYPAD"}},
		{"app's AMOUNT_SELECT/CUSTOM", `{"messageType":"USER_ACTION","screen":"AMOUNT_SELECT","data":{"selectedAmount":76,"selectionMethod":"CUSTOM"},"transactionId":"f"}`,
			Action{Kind: ActAmount, MessageType: TypeUserAction, Screen: ScreenAmountSelect, TxnID: "f", Amount: 76, SelectionMethod: "CUSTOM"}},
		{"a whole number written 60.0", `{"messageType":"USER_ACTION","screen":"AMOUNT_SELECT","data":{"selectedAmount":60.0,"selectionMethod":"PRESET_BUTTON"},"transactionId":"f"}`,
			Action{Kind: ActAmount, MessageType: TypeUserAction, Screen: ScreenAmountSelect, TxnID: "f", Amount: 60, SelectionMethod: "PRESET_BUTTON"}},
		{"first document's selectedMethod", `{"messageType":"USER_ACTION","screen":"PAYMENT_METHOD","data":{"selectedMethod":"DEBIT_CARD"},"transactionId":"f"}`,
			Action{Kind: ActMethod, MessageType: TypeUserAction, Screen: ScreenPaymentMethod, TxnID: "f", Method: "DEBIT_CARD"}},
		{"app's selectionMethod", `{"messageType":"USER_ACTION","screen":"PAYMENT_METHOD","data":{"selectionMethod":"pay_by_bank"},"transactionId":"f"}`,
			Action{Kind: ActMethod, MessageType: TypeUserAction, Screen: ScreenPaymentMethod, TxnID: "f", Method: "PAY_BY_BANK", SelectionMethod: "PAY_BY_BANK"}},
		{"CANCEL on the app's idle timeout", `{"messageType":"USER_ACTION","screen":"CANCEL","data":{"errorMessage":"Session timed out due to inactivity"},"transactionId":"f"}`,
			Action{Kind: ActCancel, MessageType: TypeUserAction, Screen: ScreenCancel, TxnID: "f", Reason: "Session timed out due to inactivity"}},
		{"CANCEL with null data", `{"messageType":"USER_ACTION","screen":"CANCEL","data":null,"transactionId":"f"}`,
			Action{Kind: ActCancel, MessageType: TypeUserAction, Screen: ScreenCancel, TxnID: "f"}},
		{"DEVICE_INFO", `{"messageType":"DEVICE_INFO","screen":"DEVICE_SERIAL","data":{"deviceSerialNumber":"SN1","deviceIpAddress":"10.0.0.2"},"transactionId":"","timestamp":1}`,
			Action{Kind: ActDeviceInfo, MessageType: TypeDeviceInfo, Screen: ScreenDeviceSerial, Device: "SN1", IP: "10.0.0.2"}},
		{"unknown fields are ignored", `{"messageType":"USER_ACTION","screen":"RESET","data":{"x":[1,{"y":2}]},"transactionId":"","extra":true}`,
			Action{Kind: ActReset, MessageType: TypeUserAction, Screen: ScreenReset}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.frame))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestEncodeIsTypedForTheApp(t *testing.T) {
	b := Message{MessageType: TypeScreenChange, Screen: ScreenLimitError, TransactionID: "f", Timestamp: 1619456796000,
		Data: Data{"limit": int64(300), "remaining": int64(0), "currency": "£"}}.Encode()
	want := `{"messageType":"SCREEN_CHANGE","screen":"LIMIT_ERROR","data":{"currency":"£","limit":300,"remaining":0},"transactionId":"f","timestamp":1619456796000}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if b := (Message{MessageType: TypeScreenChange, Screen: ScreenProcessing}).Encode(); string(b) != `{"messageType":"SCREEN_CHANGE","screen":"PROCESSING","data":{},"transactionId":"","timestamp":0}` {
		t.Fatalf("empty data: %s", b)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"ping":true}`, `{"ping":false,"messageType":"USER_ACTION","screen":"RESET"}`,
		`{"messageType":"USER_ACTION","screen":"AMOUNT_SELECT","data":{"selectedAmount":60,"selectionMethod":"PRESET_BUTTON"},"transactionId":"T1","timestamp":1619456790000}`,
		`{"messageType":"USER_ACTION","screen":"KEYPAD","data":{"selectedAmount":75,"selectionMethod":"KEYPAD"},"transactionId":"T1"}`,
		`{"messageType":"USER_ACTION","screen":"AMOUNT_SELECT","data":{"selectedAmount":-1,"selectionMethod":"OTHER"}}`,
		`{"messageType":"USER_ACTION","screen":"PAYMENT_METHOD","data":{"selectedMethod":"DEBIT_CARD","selectionMethod":""}}`,
		`{"messageType":"DEVICE_INFO","screen":"","data":{"deviceSerialNumber":"\u0000SN"}}`,
		`{"messageType":"USER_ACTION","screen":"AMOUNT_SELECT","data":{"selectedAmount":1e308}}`,
		`{"messageType":"USER_ACTION","screen":"AMOUNT_SELECT","data":{"selectedAmount":9223372036854775808}}`,
		`{"messageType":"USER_ACTION","screen":"RECEIPT_RESPONSE","data":{"selectionMethod":"yes"}}`,
		`{"messageType":"PAYMENT_RESULT","screen":"SUCCESS","data":{"paymentDetails":{"Result":"A"}}}`,
		`{"messageType":1}`, `{"messageType":"USER_ACTION","screen":"RESET","data":"x"}`, `[]`, `{`, ``, "\xff{}", `{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > DefaultMaxFrame {
			return // the server refuses these before decoding
		}
		a, err := Decode(frame)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrBadMessage) || de.Code == "" || de.Reason == "" {
				t.Fatalf("refusal without a code and reason: %v", err)
			}
			// The reason is sent back in an ERROR message: it must stay
			// short enough for a screen even for a huge frame.
			if len(de.Reason) > 400 {
				t.Fatalf("reason of %d bytes", len(de.Reason))
			}
			return
		}
		if a.Kind < ActPing || a.Kind > ActReport {
			t.Fatalf("accepted with no kind: %+v", a)
		}
		switch a.Kind {
		case ActAmount:
			if a.Amount <= 0 || a.Amount > maxWhole {
				t.Fatalf("amount %d accepted", a.Amount)
			}
		case ActMethod:
			if a.Method == "" || len(a.Method) > 64 {
				t.Fatalf("method %q accepted", a.Method)
			}
		}
		if !utf8.ValidString(a.TxnID) || len(a.TxnID) > 128 {
			t.Fatalf("transactionId %q accepted", a.TxnID)
		}
	})
}

func TestRedactKeepsCardDataOutOfLogs(t *testing.T) {
	for in, want := range map[string]string{
		`{"data":{"pan":"4111111111111111"}}`:                         `{"data":{"pan":"************1111"}}`,
		`{"data":{"cardToken":"tok-4111"},"timestamp":1619456789000}`: `{"data":{"cardToken":"REDACTED"},"timestamp":1619456789000}`,
		`{"selectedAmount":60,"transactionId":"1234567890123"}`:       `{"selectedAmount":60,"transactionId":"1234567890123"}`,
	} {
		if got := string(redact([]byte(in))); got != want {
			t.Errorf("redact(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestDecodeNamesTheBadField(t *testing.T) {
	_, err := Decode([]byte(`{"messageType":"USER_ACTION","screen":5}`))
	if err == nil || err.Error() != "screen must be a string, not a JSON number" {
		t.Fatalf("got %v", err)
	}
}

func TestDecodeNamesTheBadDataField(t *testing.T) {
	for frame, want := range map[string]string{
		`{"messageType":"USER_ACTION","screen":"PAYMENT_METHOD","data":{"selectionMethod":5}}`: "data.selectionMethod must be a string, not a JSON number",
		`{"messageType":"PAYMENT_RESULT","screen":"SUCCESS","data":{"paymentDetails":"A"}}`:    "data.paymentDetails must be an object, not a JSON string",
	} {
		if _, err := Decode([]byte(frame)); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", frame, err, want)
		}
	}
}

func TestSanitizeKeepsADeviceNameShortAndWhole(t *testing.T) {
	for in, want := range map[string]string{
		" SN-0042\n":                  "SN-0042",
		"unknown":                     "",
		strings.Repeat("a", 70):       strings.Repeat("a", 64),
		"a" + strings.Repeat("é", 40): "a" + strings.Repeat("é", 31), // 63 bytes: the 32nd é would be cut in half
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeRefusesTrailingBytes(t *testing.T) {
	for _, frame := range []string{
		`{"messageType":"USER_ACTION","screen":"RESET"} x`,
		`{"messageType":"USER_ACTION","screen":"RESET"} {}`,
		`{"messageType":"USER_ACTION","screen":"RESET"}}`,
		`{"messageType":"USER_ACTION","screen":"RESET"}]`,
	} {
		if a, err := Decode([]byte(frame)); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: accepted as %+v (%v)", frame, a, err)
		}
	}
}
