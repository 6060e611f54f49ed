package concert

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"paydesk/payment"
)

// golden reads a frame written as hex bytes in testdata.
func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func read(b []byte) ([]byte, []byte, error) {
	return ReadFrame(bufio.NewReader(iotest.OneByteReader(bytes.NewReader(b))))
}

func TestGoldenFrames(t *testing.T) {
	t.Run("the E+ debit request of 12.50 EUR is the worked frame, LRC 0x01", func(t *testing.T) {
		data, err := Request{POS: 1, Amount: 1250, FullAnswer: true, Type: Debit, Currency: "978"}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if f := Frame(data); !bytes.Equal(f, golden(t, "ep_debit_request_1250.hex")) || f[len(f)-1] != 0x01 || len(f) != 37 {
			t.Errorf("frame = % x", f)
		}
	})

	t.Run("the protocol E request of 19.99 EUR, short answer, LRC 0x0D", func(t *testing.T) {
		data, err := Request{POS: 1, Amount: 1999, Type: Debit, Currency: "978", ProtocolE: true}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if f := Frame(data); !bytes.Equal(f, golden(t, "e_request_1999.hex")) || f[len(f)-1] != 0x0D || len(f) != 29 {
			t.Errorf("frame = % x", f)
		}
	})

	t.Run("the full approved answer, LRC 0x1C, parses with the PAN kept to its last four", func(t *testing.T) {
		data, skipped, err := read(golden(t, "full_answer_approved.hex"))
		if err != nil || len(skipped) != 0 {
			t.Fatal(err, skipped)
		}
		a, err := ParseAnswer(data)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Approved() || a.POS != 1 || a.Amount != 1250 || a.Mode != '1' || a.Currency != "978" || a.Private != "0000000000" ||
			a.Report != "497010XXXXXX1234" || a.Last4() != "1234" {
			t.Errorf("answer = %+v", a)
		}
	})

	t.Run("the short refused answer, LRC 0x34", func(t *testing.T) {
		data, _, err := read(golden(t, "short_answer_refused.hex"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := ParseAnswer(data)
		if err != nil || a.Approved() || a.Status != '7' || a.Amount != 1250 || a.Private != "          " {
			t.Errorf("answer = %+v, %v", a, err)
		}
	})

	t.Run("LRC edge amounts give control-byte LRCs and still read back", func(t *testing.T) {
		for amount, want := range map[int64]byte{100: ACK, 102: EOT, 103: ENQ, 104: STX, 105: ETX} {
			data, _ := Request{POS: 1, Amount: amount, FullAnswer: true, Type: Debit, Currency: "978"}.Encode()
			f := Frame(data)
			if f[len(f)-1] != want {
				t.Errorf("amount %d: LRC 0x%02X, want 0x%02X", amount, f[len(f)-1], want)
			}
			got, _, err := read(f)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("amount %d: read back %q, %v", amount, got, err)
			}
		}
	})
}

func TestReadFrame(t *testing.T) {
	good := Frame([]byte("0170000125019780000000000"))

	t.Run("garbage before STX is skipped and reported", func(t *testing.T) {
		data, skipped, err := read(append([]byte("\x00\xffnoise"), good...))
		if err != nil || string(skipped) != "\x00\xffnoise" || len(data) != 25 {
			t.Errorf("data %q skipped %q err %v", data, skipped, err)
		}
	})

	t.Run("a corrupt LRC is refused with the data", func(t *testing.T) {
		bad := bytes.Clone(good)
		bad[len(bad)-1] ^= 0x40
		data, _, err := read(bad)
		if !errors.Is(err, ErrBadLRC) || len(data) != 25 {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("a frame cut short is an unexpected end", func(t *testing.T) {
		_, _, err := read(good[:10])
		if !errors.Is(err, io.EOF) {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("a frame over 512 data bytes is refused", func(t *testing.T) {
		_, _, err := read(append([]byte{STX}, bytes.Repeat([]byte("1"), 600)...))
		if !errors.Is(err, ErrFrameTooLong) {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("control bytes inside the data are refused", func(t *testing.T) {
		_, _, err := read(Frame([]byte("01\x0500001250")))
		if !errors.Is(err, ErrBadData) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestRequestValidation(t *testing.T) {
	ok := Request{POS: 1, Amount: 1250, Type: Debit, Currency: "978"}
	for name, q := range map[string]Request{
		"POS 0":            {POS: 0, Amount: 1, Type: Debit, Currency: "978"},
		"POS 100":          {POS: 100, Amount: 1, Type: Debit, Currency: "978"},
		"zero amount":      {POS: 1, Amount: 0, Type: Debit, Currency: "978"},
		"negative amount":  {POS: 1, Amount: -5, Type: Debit, Currency: "978"},
		"huge amount":      {POS: 1, Amount: 100_000_000, Type: Debit, Currency: "978"},
		"alpha currency":   {POS: 1, Amount: 1, Type: Debit, Currency: "EUR"},
		"unknown type":     {POS: 1, Amount: 1, Type: '9', Currency: "978"},
		"long private":     {POS: 1, Amount: 1, Type: Debit, Currency: "978", Private: "12345678901"},
		"control in priv.": {POS: 1, Amount: 1, Type: Debit, Currency: "978", Private: "a\x03"},
	} {
		if _, err := q.Encode(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	data, err := Request{POS: 7, Amount: 1, Type: Credit, Currency: "840", Private: "REF0000001", ForceOnline: true}.Encode()
	if err != nil || string(data) != "0700000001"+"0"+"1"+"1"+"840"+"REF0000001"+"A010B011" {
		t.Errorf("refund request = %q, %v", data, err)
	}
	if _, err := ok.Encode(); err != nil {
		t.Error(err)
	}
}

func TestParseAnswerRejects(t *testing.T) {
	for name, data := range map[string]string{
		"wrong length":   "0170000125019780000",
		"letters in amt": "01700A0125019780000000000",
		"bad currency":   "0170000125010EU0000000000",
		"control byte":   "01700001250197800000000\x01\x02",
	} {
		if _, err := ParseAnswer([]byte(data)); !errors.Is(err, ErrBadAnswer) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, name := range []string{"ep_debit_request_1250.hex", "full_answer_approved.hex", "short_answer_refused.hex", "e_request_1999.hex"} {
		f.Add(golden(f, name))
	}
	f.Add([]byte{0xff, STX, ETX, ETX})
	f.Fuzz(func(t *testing.T, b []byte) {
		data, _, err := read(b)
		if len(data) > MaxData {
			t.Fatalf("%d data bytes", len(data))
		}
		if err == nil && !bytes.Equal(Frame(data), b[bytes.IndexByte(b, STX):bytes.IndexByte(b, STX)+len(data)+3]) {
			t.Fatalf("accepted frame does not re-encode to its bytes")
		}
	})
}

func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte("0170000125019780000000000"))
	f.Add([]byte("01000001250" + "1" + "497010XXXXXX1234" + strings.Repeat(" ", 39) + "978" + "0000000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnswer(b)
		if err == nil && (a.Amount < 0 || len(a.Last4()) > 4) {
			t.Fatalf("answer %+v", a)
		}
	})
}

// FuzzParseRequest checks the request decoder (the simulator's side, and
// what a log replay reads) never accepts a request it cannot encode back
// to the same bytes.
func FuzzParseRequest(f *testing.F) {
	for _, name := range []string{"ep_debit_request_1250.hex", "e_request_1999.hex"} {
		data, _, err := read(golden(f, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("0100000100110978          A010B011"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseRequest(b)
		if err != nil {
			return
		}
		if q.Amount < 0 || q.Amount > 99_999_999 {
			t.Fatalf("amount %d accepted", q.Amount)
		}
		if _, err := q.Encode(); err != nil {
			t.Fatalf("accepted request %+v does not encode: %v", q, err)
		}
	})
}

// The terminal's currency table and payment's ISO 4217 exponents must
// agree, or the console and the HTTP API would put the point in different
// places for the same amount.
func TestCurrencyDecimalsAgree(t *testing.T) {
	for _, c := range currencies {
		if got := payment.Decimals(c.Alpha); got != c.Decimals {
			t.Errorf("%s: terminal says %d decimals, payment says %d", c.Alpha, c.Decimals, got)
		}
	}
}
