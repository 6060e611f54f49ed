package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
)

func good(seq int64) Event {
	return Event{Seq: seq, Time: time.Unix(1, 0), Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: "T1",
		Status: payment.StatusCreated, Minor: 100, Currency: "MYR"}
}

func TestValidate(t *testing.T) {
	if err := Validate([]Event{good(1), good(2), good(7)}); err != nil {
		t.Fatalf("a good batch: %v", err)
	}
	with := func(f func(*Event)) []Event { e := good(1); f(&e); return []Event{e} }
	for name, b := range map[string][]Event{
		"empty":                              {},
		"too many":                           make([]Event, MaxBatch+1),
		"a sequence going back":              {good(2), good(1)},
		"a repeated sequence":                {good(1), good(1)},
		"a negative sequence":                {good(-1)},
		"an unknown kind":                    with(func(e *Event) { e.Kind = "x" }),
		"an unknown status":                  with(func(e *Event) { e.Status = "paid" }),
		"no rail":                            with(func(e *Event) { e.Rail = "" }),
		"a transition without a transaction": with(func(e *Event) { e.TxnID = "" }),
		"a currency not ISO":                 with(func(e *Event) { e.Currency = "ringgit" }),
		"a long detail":                      with(func(e *Event) { e.Detail = strings.Repeat("x", maxText+1) }),
		"a long raw message":                 with(func(e *Event) { e.Raw = make([]byte, payment.MaxRaw+1) }),
		"no time":                            with(func(e *Event) { e.Time = time.Time{} }),
	} {
		if err := Validate(b); !errors.Is(err, ErrBadBatch) {
			t.Errorf("%s: err = %v, want ErrBadBatch", name, err)
		}
	}
}

func TestKioskIDs(t *testing.T) {
	for _, id := range []string{"KIOSK007", "k-1.a_b", strings.Repeat("k", 64)} {
		if !KioskIDRE.MatchString(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", "-k", "a b", "../x", strings.Repeat("k", 65), "k\n"} {
		if KioskIDRE.MatchString(id) {
			t.Errorf("%q accepted", id)
		}
	}
}

// FuzzFrame: whatever a kiosk sends, decoding and validating it neither
// panics nor lets through a batch that breaks the hub's rules.
func FuzzFrame(f *testing.F) {
	b, _ := json.Marshal(Frame{Type: TypeEvents, Events: []Event{good(1), good(2)}})
	f.Add(b)
	f.Add([]byte(`{"type":"hello","kiosk_id":"K1","journal_seq":3}`))
	f.Add([]byte(`{"type":"events","events":[{"seq":1,"at":"2026-12-04T10:00:00Z","kind":"notice","rail":"system","raw":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr Frame
		if json.Unmarshal(data, &fr) != nil {
			return
		}
		if Validate(fr.Events) != nil {
			return
		}
		var prev int64
		for _, e := range fr.Events {
			if e.Seq <= prev || len(e.Raw) > payment.MaxRaw || len(e.Detail) > maxText {
				t.Fatalf("Validate let through %+v", e)
			}
			prev = e.Seq
		}
	})
}

func TestCheckHello(t *testing.T) {
	ok := Frame{Type: TypeHello, KioskID: "K1", JournalSeq: 3, Version: "v1.2.3", Rails: map[string]string{"pos": "ok"}}
	if err := CheckHello(ok); err != nil {
		t.Fatalf("a good hello: %v", err)
	}
	many := map[string]string{}
	for i := range 17 {
		many[fmt.Sprintf("r%d", i)] = "ok"
	}
	for name, f := range map[string]Frame{
		"long version": {Version: strings.Repeat("v", 65)},
		"17 rails":     {Rails: many},
		"long rail":    {Rails: map[string]string{strings.Repeat("r", 33): "ok"}},
		"empty rail":   {Rails: map[string]string{"": "ok"}},
		"long health":  {Rails: map[string]string{"pos": strings.Repeat("h", 201)}},
		"negative seq": {JournalSeq: -1},
	} {
		if CheckHello(f) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
