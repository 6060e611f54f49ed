package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// wireSecret is the shared secret of the MobyPay documents' samples.
var wireSecret = []byte("POS-KIOSK-SECRET-KEY-2024")

// wireGolden is one signed sample of the MobyPay POS–kiosk protocol.
type wireGolden struct {
	file     string
	verifies bool
}

var wireGoldens = []wireGolden{
	{"card_request.json", true},
	{"ack_processing.json", true},
	{"result_success.json", true},
	{"result_failed_user_abort.json", false}, // edited after signing
	{"ipp_plans.json", true},
	{"ack_plan_received.json", true},
}

func wireReadGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "pos", name))
	if err != nil {
		t.Fatalf("reading golden frame: %v", err)
	}
	return b
}

func wireEnvelope(t testing.TB, frame []byte) Envelope {
	t.Helper()
	var env Envelope
	if err := json.Unmarshal(frame, &env); err != nil {
		t.Fatalf("decoding envelope: %v", err)
	}
	return env
}

func TestSignRawReproducesTheRealSignatures(t *testing.T) {
	for _, g := range wireGoldens {
		t.Run(g.file, func(t *testing.T) {
			env := wireEnvelope(t, wireReadGolden(t, g.file))
			signed, err := SignRaw(env.Payload, wireSecret)
			if err != nil {
				t.Fatalf("SignRaw: %v", err)
			}
			if (signed.Signature == env.Signature) != g.verifies {
				t.Fatalf("signature %s, sample says %s; the sample should verify: %v", signed.Signature, env.Signature, g.verifies)
			}
			if !bytes.Equal(signed.Payload, env.Payload) {
				t.Fatalf("SignRaw changed the payload bytes: %s", signed.Payload)
			}
		})
	}
}

func TestSignReproducesTheCardRequest(t *testing.T) {
	env, err := Sign(Payload{
		"type":         "transaction_request",
		"txn_id":       "TXN1757492341554",
		"amount":       10.0,
		"payment_mode": "card",
		"kiosk_id":     "KIOSK001",
		"timestamp":    "1757492341555",
		"nonce":        "8915fea5-ad40-4c7c-b0a9-86665c66013e",
	}, wireSecret)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	const want = "7ee758c7a3182d1b141d998e4a5f92d85141de1537ff51bde0302ccc9927f8e8"
	if env.Signature != want {
		t.Fatalf("signature %s, want %s", env.Signature, want)
	}
	const canon = `{"amount":10.0,"kiosk_id":"KIOSK001","nonce":"8915fea5-ad40-4c7c-b0a9-86665c66013e","payment_mode":"card","timestamp":"1757492341555","txn_id":"TXN1757492341554","type":"transaction_request"}`
	if string(env.Payload) != canon {
		t.Fatalf("payload %s, want the canonical bytes %s", env.Payload, canon)
	}
	t.Run("an amount from FormatAmount as json.Number signs the same", func(t *testing.T) {
		again, err := Sign(Payload{
			"type": "transaction_request", "txn_id": "TXN1757492341554",
			"amount": json.Number(FormatAmount(1000)), "payment_mode": "card", "kiosk_id": "KIOSK001",
			"timestamp": "1757492341555", "nonce": "8915fea5-ad40-4c7c-b0a9-86665c66013e",
		}, wireSecret)
		if err != nil || again.Signature != want {
			t.Fatalf("signature %s, %v; want %s", again.Signature, err, want)
		}
	})
}

func TestSignEncodesEveryValueKind(t *testing.T) {
	env, err := Sign(Payload{
		"s": "é<>&/\"\\\n😀", "b": true, "n": nil, "i": 7, "i64": int64(-9), "u8": uint8(200),
		"f": 2.5, "big": 1e16, "tiny": 1e-05, "num": json.Number("1E5"), "int": json.Number("-0"),
		"list": []any{1, "x", []string{"a"}}, "obj": map[string]any{"z": 1, "a": Payload{"k": false}},
	}, wireSecret)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	// Python: json.dumps(..., sort_keys=True, separators=(',', ':'))
	const want = `{"b":true,"big":1e+16,"f":2.5,"i":7,"i64":-9,"int":0,"list":[1,"x",["a"]],"n":null,"num":100000.0,"obj":{"a":{"k":false},"z":1},"s":"\u00e9<>&/\"\\\n\ud83d\ude00","tiny":1e-05,"u8":200}`
	if string(env.Payload) != want {
		t.Fatalf("payload\n got %s\nwant %s", env.Payload, want)
	}
	if canon, err := Canonical(nil, env.Payload); err != nil || !bytes.Equal(canon, env.Payload) {
		t.Fatalf("Sign's payload is not canonical: %s, %v", canon, err)
	}
}

func TestSignRefusesValuesThePOSCannotReproduce(t *testing.T) {
	for name, v := range map[string]any{
		"NaN":                      math.NaN(),
		"an infinity":              math.Inf(1),
		"a channel":                make(chan int),
		"a float32":                float32(1.5),
		"invalid UTF-8":            "\xff",
		"an invalid json.Number":   json.Number("1."),
		"a nested unsupported one": []any{struct{}{}},
	} {
		t.Run("it refuses "+name, func(t *testing.T) {
			if _, err := Sign(Payload{"v": v}, wireSecret); !errors.Is(err, ErrUnsupportedValue) {
				t.Fatalf("Sign: %v, want ErrUnsupportedValue", err)
			}
		})
	}
	t.Run("it refuses a key that is not UTF-8", func(t *testing.T) {
		if _, err := Sign(Payload{"\xff": 1}, wireSecret); !errors.Is(err, ErrUnsupportedValue) {
			t.Fatalf("Sign: %v, want ErrUnsupportedValue", err)
		}
	})
}

func TestSignRawRefusesWhatIsNotAPayloadObject(t *testing.T) {
	if _, err := SignRaw([]byte(`{"a":`), wireSecret); !errors.Is(err, ErrMalformedJSON) {
		t.Fatalf("malformed: %v, want ErrMalformedJSON", err)
	}
	if _, err := SignRaw([]byte(` [1] `), wireSecret); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("array: %v, want ErrBadEnvelope", err)
	}
}

func TestLine(t *testing.T) {
	now := time.UnixMilli(1757492341555)
	env, err := Sign(Payload{"type": "ack", "nonce": "n1", "timestamp": "1757492341555"}, wireSecret)
	if err != nil {
		t.Fatal(err)
	}
	line := env.Line()
	t.Run("it is one JSON object, payload first, then a newline", func(t *testing.T) {
		want := `{"payload":` + string(env.Payload) + `,"signature":"` + env.Signature + "\"}\n"
		if string(line) != want {
			t.Fatalf("Line() = %q, want %q", line, want)
		}
	})
	t.Run("the line passes the guard on the other side", func(t *testing.T) {
		fr := NewFrameReader(bytes.NewReader(line), 0)
		frame, err := fr.Next()
		if err != nil {
			t.Fatal(err)
		}
		v := NewVerifier(wireSecret, nil, VerifierOptions{Now: func() time.Time { return now }})
		if _, err := v.Check(frame); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})
	t.Run("an empty envelope is still valid JSON", func(t *testing.T) {
		if got := (Envelope{}).Line(); !json.Valid(bytes.TrimSpace(got)) {
			t.Fatalf("Line() = %q", got)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	p := Payload{
		"type": "transaction_request", "txn_id": "TXN1757492341554", "amount": 25.5,
		"payment_mode": "card", "kiosk_id": "KIOSK001", "timestamp": "1757492341555",
		"nonce": "8915fea5-ad40-4c7c-b0a9-86665c66013e",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(p, wireSecret); err != nil {
			b.Fatal(err)
		}
	}
}
