package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wireNow is the fake "now" of the guard tests.
var wireNow = time.UnixMilli(1757482370549)

// wireFrame signs payload (JSON text, any key order) and wraps it in an
// envelope as the POS writes it.
func wireFrame(t testing.TB, payload string) []byte {
	t.Helper()
	env, err := SignRaw([]byte(payload), wireSecret)
	if err != nil {
		t.Fatalf("signing %s: %v", payload, err)
	}
	return []byte(`{"payload":` + payload + `,"signature":"` + env.Signature + `"}`)
}

// wirePayload is a success result stamped at ts with the given nonce.
func wirePayload(nonce string, ts time.Time) string {
	return `{"type":"transaction_result","txn_id":"TXN1757482355464","status":"success","pos_id":"POS001",` +
		`"transaction_id":"000410","amount":2.0,"timestamp":"` + strconv.FormatInt(ts.UnixMilli(), 10) +
		`","nonce":"` + nonce + `"}`
}

func wireVerifier(store *NonceStore, now time.Time) *Verifier {
	return NewVerifier(wireSecret, store, VerifierOptions{Now: func() time.Time { return now }})
}

func TestVerifyGoldenFrames(t *testing.T) {
	for _, g := range wireGoldens {
		t.Run(g.file, func(t *testing.T) {
			env := wireEnvelope(t, wireReadGolden(t, g.file))
			msg, err := DecodePayload(env.Payload)
			if err != nil {
				t.Fatalf("DecodePayload: %v", err)
			}
			err = Verify(env, wireSecret, msg.Timestamp, 0)
			switch {
			case g.verifies && err != nil:
				t.Fatalf("Verify: %v", err)
			case !g.verifies && !errors.Is(err, ErrBadSignature):
				t.Fatalf("Verify: %v, want ErrBadSignature (the sample was edited after signing)", err)
			}
		})
	}
	t.Run("a sample verified a minute later is stale", func(t *testing.T) {
		env := wireEnvelope(t, wireReadGolden(t, "result_success.json"))
		if err := Verify(env, wireSecret, wireNow.Add(DefaultWindow), 0); !errors.Is(err, ErrStale) {
			t.Fatalf("Verify: %v, want ErrStale", err)
		}
	})
	t.Run("a signature in uppercase hex is not an envelope Python would accept", func(t *testing.T) {
		env := wireEnvelope(t, wireReadGolden(t, "result_success.json"))
		env.Signature = strings.ToUpper(env.Signature)
		if err := Verify(env, wireSecret, wireNow, 0); !errors.Is(err, ErrBadEnvelope) {
			t.Fatalf("Verify: %v, want ErrBadEnvelope", err)
		}
	})
}

func TestVerifierAcceptsTheRealFrames(t *testing.T) {
	for _, g := range wireGoldens {
		if !g.verifies {
			continue
		}
		t.Run(g.file, func(t *testing.T) {
			frame := wireReadGolden(t, g.file)
			msg, err := DecodePayload(wireEnvelope(t, frame).Payload)
			if err != nil {
				t.Fatal(err)
			}
			got, err := wireVerifier(nil, msg.Timestamp.Add(700*time.Millisecond)).Check(frame)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got.Type == "" || got.Nonce != msg.Nonce || !got.Timestamp.Equal(msg.Timestamp) {
				t.Fatalf("decoded %+v", got)
			}
		})
	}
	t.Run("the success result's fields are decoded", func(t *testing.T) {
		got, err := wireVerifier(nil, wireNow).Check(wireReadGolden(t, "result_success.json"))
		if err != nil {
			t.Fatal(err)
		}
		want := Message{Type: "transaction_result", TxnID: "TXN1757482355464", Status: "success", PosID: "POS001",
			TransactionID: "000410", Amount: "2.0", Nonce: "joHQ83Mp9dWbFsREUHDRCg==", Timestamp: wireNow}
		got.Payload = nil
		if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", want) {
			t.Fatalf("got  %+v\nwant %+v", *got, want)
		}
	})
	t.Run("the plans result carries its plan", func(t *testing.T) {
		got, err := wireVerifier(nil, time.UnixMilli(1757492763490)).Check(wireReadGolden(t, "ipp_plans.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Plans) != 1 || got.Plans[0].ID != "pay-in-full" || got.Amount != "100.0" {
			t.Fatalf("plans %+v amount %q", got.Plans, got.Amount)
		}
	})
}

func TestVerifierRejections(t *testing.T) {
	good := wirePayload("nonce-1", wireNow)
	sig := wireFrame(t, good)[len(`{"payload":`+good+`,"signature":"`):][:64]
	stalePayload := wirePayload("nonce-1", wireNow.Add(-2*time.Minute))
	for _, tc := range []struct {
		name  string
		frame string
		want  error
	}{
		{"a frame over 64 KiB is too large", `{"payload":{"x":"` + strings.Repeat("a", 1<<20) + `"}}`, ErrFrameTooLarge},
		{"a frame over 64 KiB is too large even if it is not JSON", strings.Repeat("}", MaxFrame+1), ErrFrameTooLarge},
		{"a truncated frame is malformed", `{"payload":{"type":"ack"`, ErrMalformedJSON},
		{"junk is malformed", `hello`, ErrMalformedJSON},
		{"an empty frame is malformed", ``, ErrMalformedJSON},
		{"invalid UTF-8 in an ignored key is malformed", "{\"x\":\"\xff\",\"payload\":" + good + `,"signature":"` + string(sig) + `"}`, ErrMalformedJSON},
		{"extra data after the envelope is malformed", string(wireFrame(t, good)) + `x`, ErrMalformedJSON},
		{"malformed JSON wins over a bad shape", `{"signature":1,"x":tru}`, ErrMalformedJSON},
		{"JSON that is not an object is not an envelope", `[1,2]`, ErrBadEnvelope},
		{"an envelope without payload", `{"signature":"` + string(sig) + `"}`, ErrBadEnvelope},
		{"a payload that is not an object", `{"payload":"x","signature":"` + string(sig) + `"}`, ErrBadEnvelope},
		{"an envelope without signature", `{"payload":` + good + `}`, ErrBadEnvelope},
		{"a signature that is not a string", `{"payload":` + good + `,"signature":123}`, ErrBadEnvelope},
		{"a signature of 63 hex digits", `{"payload":` + good + `,"signature":"` + string(sig[:63]) + `"}`, ErrBadEnvelope},
		{"a signature in uppercase hex", `{"payload":` + good + `,"signature":"` + strings.ToUpper(string(sig)) + `"}`, ErrBadEnvelope},
		{"a signature with a stray space", `{"payload":` + good + `,"signature":"` + string(sig[:20]) + " " + string(sig[21:]) + `"}`, ErrBadEnvelope},
		{"a wrong signature", `{"payload":` + good + `,"signature":"` + strings.Repeat("0", 64) + `"}`, ErrBadSignature},
		{"a bad signature on a stale frame reports the signature", `{"payload":` + stalePayload + `,"signature":"` + string(sig) + `"}`, ErrBadSignature},
		{"a bad signature on a payload without nonce reports the signature", `{"payload":{"type":"ack"},"signature":"` + string(sig) + `"}`, ErrBadSignature},
		{"a payload changed after signing", strings.Replace(string(wireFrame(t, good)), `2.0`, `20.0`, 1), ErrBadSignature},
		{"the float 2.0 written as the integer 2", strings.Replace(string(wireFrame(t, good)), `2.0`, `2`, 1), ErrBadSignature},
		{"a payload without type", string(wireFrame(t, `{"nonce":"n","timestamp":"1757482370549"}`)), ErrMissingField},
		{"a payload without nonce", string(wireFrame(t, `{"type":"ack","timestamp":"1757482370549"}`)), ErrMissingField},
		{"a payload with an empty nonce", string(wireFrame(t, `{"type":"ack","nonce":"","timestamp":"1757482370549"}`)), ErrMissingField},
		{"a payload with a numeric type", string(wireFrame(t, `{"type":1,"nonce":"n","timestamp":"1757482370549"}`)), ErrMissingField},
		{"a payload without timestamp", string(wireFrame(t, `{"type":"ack","nonce":"n"}`)), ErrMissingField},
		{"a timestamp that is not digits", string(wireFrame(t, `{"type":"ack","nonce":"n","timestamp":"17574823705a9"}`)), ErrMissingField},
		{"a timestamp written as a float", string(wireFrame(t, `{"type":"ack","nonce":"n","timestamp":1757482370549.0}`)), ErrMissingField},
		{"a negative timestamp", string(wireFrame(t, `{"type":"ack","nonce":"n","timestamp":-1}`)), ErrMissingField},
		{"a timestamp beyond int64", string(wireFrame(t, `{"type":"ack","nonce":"n","timestamp":"99999999999999999999"}`)), ErrMissingField},
		{"a timestamp two minutes old is stale", string(wireFrame(t, stalePayload)), ErrStale},
		{"a timestamp a minute ahead is stale", string(wireFrame(t, wirePayload("n", wireNow.Add(61*time.Second)))), ErrStale},
		{"a timestamp exactly one window old is stale", string(wireFrame(t, wirePayload("n", wireNow.Add(-DefaultWindow)))), ErrStale},
		{"a timestamp exactly one window ahead is stale", string(wireFrame(t, wirePayload("n", wireNow.Add(DefaultWindow)))), ErrStale},
		{"malformed plans in an authentic payload", string(wireFrame(t, `{"type":"transaction_result","nonce":"n","timestamp":"1757482370549","plans":[{"planId":7}]}`)), ErrBadEnvelope},
		{"plans with an amount of three decimals", string(wireFrame(t, `{"type":"transaction_result","nonce":"n","timestamp":"1757482370549","plans":[{"installmentDetails":[{"amount":1.005}]}]}`)), ErrBadEnvelope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := NewNonceStore(0, 0)
			_, err := wireVerifier(store, wireNow).Check([]byte(tc.frame))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check: %v, want %v", err, tc.want)
			}
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Reason == "" {
				t.Fatalf("error %T %v is not a *RejectError with a reason", err, err)
			}
			if store.Len() != 0 {
				t.Fatalf("a refused frame consumed a nonce")
			}
		})
	}
}

func TestVerifierAccepts(t *testing.T) {
	for _, tc := range []struct{ name, payload string }{
		{"a timestamp as an integer", `{"type":"ack","nonce":"n","timestamp":1757482370549}`},
		{"a timestamp just inside the past edge", wirePayload("n", wireNow.Add(-DefaultWindow+time.Millisecond))},
		{"a timestamp just inside the future edge", wirePayload("n", wireNow.Add(DefaultWindow-time.Millisecond))},
		{"a POS clock 0.7 s behind, as in the real ack", wirePayload("n", wireNow.Add(-693*time.Millisecond))},
		{"unknown extra fields", `{"type":"ack","nonce":"n","timestamp":"1757482370549","extra":{"deep":[1,2.50,"é"]},"kiosk_id":"K1"}`},
		{"escaped field names and values", `{"\u0074ype":"a\u0063k","nonce":"\u00e9\ud83d\ude00","timestamp":"\u0031757482370549"}`},
	} {
		t.Run("it accepts "+tc.name, func(t *testing.T) {
			if _, err := wireVerifier(nil, wireNow).Check(wireFrame(t, tc.payload)); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
	t.Run("it ignores extra top-level keys, before or after", func(t *testing.T) {
		f := wireFrame(t, wirePayload("n", wireNow))
		frame := `{"v":2, "x":[{"y":null}],` + string(f[1:len(f)-1]) + `, "z":"\u00e9"}`
		if _, err := wireVerifier(nil, wireNow).Check([]byte(frame)); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})
	t.Run("the last of duplicate payload keys counts, as in Python", func(t *testing.T) {
		f := wireFrame(t, wirePayload("n", wireNow))
		frame := `{"payload":{"type":"forged"},` + string(f[1:])
		msg, err := wireVerifier(nil, wireNow).Check([]byte(frame))
		if err != nil || msg.Type != "transaction_result" {
			t.Fatalf("Check: %+v, %v", msg, err)
		}
	})
	t.Run("escapes decode into the message fields", func(t *testing.T) {
		msg, err := wireVerifier(nil, wireNow).Check(wireFrame(t, `{"\u0074ype":"a\u0063k","nonce":"\u00e9\ud83d\ude00","timestamp":"\u0031757482370549","message":"a\"b\\c\ud800"}`))
		if err != nil {
			t.Fatal(err)
		}
		if msg.Type != "ack" || msg.Nonce != "é😀" || msg.Message != "a\"b\\c\uFFFD" || !msg.Timestamp.Equal(wireNow) {
			t.Fatalf("decoded %+v", msg)
		}
	})
}

func TestVerifierReplay(t *testing.T) {
	frame := wireFrame(t, wirePayload("nonce-r", wireNow))
	t.Run("the same frame twice is a replay", func(t *testing.T) {
		v := wireVerifier(nil, wireNow)
		if _, err := v.Check(frame); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Check(frame); !errors.Is(err, ErrReplay) {
			t.Fatalf("second Check: %v, want ErrReplay", err)
		}
	})
	t.Run("a replay on another connection sharing the store is caught", func(t *testing.T) {
		store := NewNonceStore(0, 0)
		if _, err := wireVerifier(store, wireNow).Check(frame); err != nil {
			t.Fatal(err)
		}
		if _, err := wireVerifier(store, wireNow.Add(time.Second)).Check(frame); !errors.Is(err, ErrReplay) {
			t.Fatalf("Check on the second connection: %v, want ErrReplay", err)
		}
	})
	t.Run("a forged copy does not burn the genuine message's nonce", func(t *testing.T) {
		store := NewNonceStore(0, 0)
		v := wireVerifier(store, wireNow)
		forged := bytes.Replace(frame, []byte(`"success"`), []byte(`"approved"`), 1)
		for range 2 {
			if _, err := v.Check(forged); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("forged: %v, want ErrBadSignature", err)
			}
		}
		if _, err := v.Check(frame); err != nil {
			t.Fatalf("genuine after forged: %v", err)
		}
		if _, err := v.Check(forged); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("forged after genuine: %v, want ErrBadSignature (not ErrReplay)", err)
		}
	})
	t.Run("nonces Python tells apart are distinct, even as lone surrogates", func(t *testing.T) {
		v := wireVerifier(nil, wireNow)
		for _, n := range []string{`\ud800`, `\udc00`, `\ud800x`, "\uFFFD"} {
			if _, err := v.Check(wireFrame(t, wirePayload(n, wireNow))); err != nil {
				t.Fatalf("nonce %s: %v", n, err)
			}
		}
		if _, err := v.Check(wireFrame(t, wirePayload(`\uDC00`, wireNow))); !errors.Is(err, ErrReplay) {
			t.Fatalf("the same nonce spelled in uppercase hex: %v, want ErrReplay", err)
		}
	})
	t.Run("a full store refuses new nonces", func(t *testing.T) {
		store := NewNonceStore(0, 2)
		v := wireVerifier(store, wireNow)
		for i := range 2 {
			if _, err := v.Check(wireFrame(t, wirePayload(fmt.Sprint("n", i), wireNow))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := v.Check(wireFrame(t, wirePayload("n2", wireNow))); !errors.Is(err, ErrNonceStoreFull) {
			t.Fatalf("Check: %v, want ErrNonceStoreFull", err)
		}
	})
	t.Run("a store with a shorter window refuses what it cannot remember", func(t *testing.T) {
		v := wireVerifier(NewNonceStore(10*time.Second, 0), wireNow)
		if _, err := v.Check(wireFrame(t, wirePayload("n", wireNow.Add(-30*time.Second)))); !errors.Is(err, ErrStale) {
			t.Fatalf("Check: %v, want ErrStale", err)
		}
	})
}

func TestVerifierMessagesOwnTheirMemory(t *testing.T) {
	v := wireVerifier(nil, wireNow)
	frame := wireFrame(t, wirePayload("nonce-a", wireNow))
	first, err := v.Check(frame)
	if err != nil {
		t.Fatal(err)
	}
	want := *first
	wantPayload := string(first.Payload)
	for i := range frame {
		frame[i] = 'x'
	}
	if _, err := v.Check(wireFrame(t, `{"type":"ack","txn_id":"OTHER","nonce":"nonce-b","timestamp":"1757482370549"}`)); err != nil {
		t.Fatal(err)
	}
	if first.Type != want.Type || first.TxnID != "TXN1757482355464" || first.Nonce != "nonce-a" || string(first.Payload) != wantPayload {
		t.Fatalf("message changed after the next Check: %+v", first)
	}
	t.Run("appending to Payload does not touch the strings", func(t *testing.T) {
		_ = append(first.Payload, strings.Repeat("z", 100)...)
		if first.TxnID != "TXN1757482355464" || first.Amount != "2.0" {
			t.Fatalf("fields changed: %+v", first)
		}
	})
}

func FuzzVerifierCheck(f *testing.F) {
	for _, g := range wireGoldens {
		f.Add(wireReadGolden(f, g.file))
	}
	f.Add(wireFrame(f, wirePayload("n", wireNow)))
	f.Add(wireFrame(f, `{"type":"transaction_result","nonce":"n","timestamp":1757482370549,"plans":[{"planId":"IPP_3M","frequency":"Monthly","totalInstallments":3,"installmentDetails":[{"installmentNumber":1,"date":"2024-02-15","amount":35.00,"installmentFee":1.50,"installmentFeePercentage":1.5}]}]}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		v := wireVerifier(nil, wireNow)
		msg, err := v.Check(frame)
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("error is not a *RejectError: %v", err)
			}
			return
		}
		if msg.Type == "" || msg.Nonce == "" {
			t.Fatalf("accepted without type or nonce: %q", frame)
		}
		if _, err := v.Check(frame); !errors.Is(err, ErrReplay) {
			t.Fatalf("second Check of %q: %v, want ErrReplay", frame, err)
		}
	})
}

// wireBatcher signs realistic POS frames into one newline-delimited
// stream: each transaction's ack (236 bytes) and success result (319
// bytes), alternately, as a POS sends them: 278 bytes on average. It reuses its buffers so that
// generating a batch leaves no garbage for the timed part of a benchmark to
// collect.
type wireBatcher struct {
	mac                   hash.Hash
	stream, payload, sign []byte
}

func newWireBatcher() *wireBatcher {
	return &wireBatcher{mac: hmac.New(sha256.New, wireSecret)}
}

// batch returns n frames stamped one millisecond apart from start, with
// nonces derived from seq. The stream is valid until the next call.
func (w *wireBatcher) batch(tb testing.TB, start time.Time, seq uint64, n int) []byte {
	w.stream = w.stream[:0]
	var raw [16]byte
	for i := range n {
		binary.LittleEndian.PutUint64(raw[:], seq+uint64(i))
		binary.LittleEndian.PutUint64(raw[8:], 0x9e3779b97f4a7c15*(seq+uint64(i)))
		ts := start.Add(time.Duration(i) * time.Millisecond).UnixMilli()
		p := append(w.payload[:0], `{"type":"ack","txn_id":"TXN1757482355464","status":"processing","pos_id":"POS001","timestamp":"`...)
		if i%2 == 1 {
			p = append(w.payload[:0], `{"type":"transaction_result","txn_id":"TXN1757482355464","status":"success","pos_id":"POS001",`+
				`"transaction_id":"000410","amount":25.5,"authorization_code":"AUTH123","timestamp":"`...)
		}
		p = strconv.AppendInt(p, ts, 10)
		p = append(p, `","nonce":"`...)
		p = base64.StdEncoding.AppendEncode(p, raw[:])
		p = append(p, `"}`...)
		w.payload = p
		var err error
		if w.sign, err = Canonical(w.sign[:0], p); err != nil {
			tb.Fatal(err)
		}
		w.mac.Reset()
		w.mac.Write(w.sign)
		var sum [sha256.Size]byte
		w.stream = append(w.stream, `{"payload":`...)
		w.stream = append(w.stream, p...)
		w.stream = append(w.stream, `,"signature":"`...)
		w.stream = hex.AppendEncode(w.stream, w.mac.Sum(sum[:0]))
		w.stream = append(w.stream, "\"}\n"...)
	}
	return w.stream
}

// wireSource is a reader whose content the benchmark swaps batch by batch.
type wireSource struct{ data []byte }

func (s *wireSource) Read(p []byte) (int, error) {
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

// BenchmarkInbound measures the whole inbound path for one connection on
// one goroutine: frame splitting, JSON and canonical form, HMAC, field
// decoding and the shared nonce store (in its steady state: messages 1 ms
// apart, so it holds about a window's worth of nonces and evicts as it goes).
func BenchmarkInbound(b *testing.B) {
	const batch = 4096
	start := time.UnixMilli(1757482370549)
	now := start
	store := NewNonceStore(0, 0)
	v := NewVerifier(wireSecret, store, VerifierOptions{Now: func() time.Time { return now }})
	src := &wireSource{}
	fr := NewFrameReader(src, 0)
	gen := newWireBatcher()
	frameLen := len(gen.batch(b, start, 0, 2)) / 2
	b.ReportAllocs()
	b.SetBytes(int64(frameLen))
	left, seq := 0, uint64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if left == 0 {
			b.StopTimer()
			src.data = gen.batch(b, start.Add(time.Duration(seq)*time.Millisecond), seq, batch)
			left = batch
			b.StartTimer()
		}
		frame, err := fr.Next()
		if err != nil {
			b.Fatal(err)
		}
		now = start.Add(time.Duration(seq)*time.Millisecond + 5*time.Millisecond)
		if _, err := v.Check(frame); err != nil {
			b.Fatal(err)
		}
		left--
		seq++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(store.Len()), "nonces-held")
}
