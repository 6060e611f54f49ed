package mpesa_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/mpesa"
	"paydesk/mpesa/sandbox"
	"paydesk/payment"
)

// promptly is how long a step that must not wait for another sale's
// journal write may take: it needs microseconds, and the limit is
// generous because the machine runs two test suites on two cores.
const promptly = 5 * time.Second

// within runs f and fails the test unless it returns within promptly.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(promptly):
		t.Errorf("%s waited on a journal write (over %s)", what, promptly)
	}
}

// One sale's slow journal write holds up nothing but that sale: while
// the approvals of an STK sale and a paybill sale hang in the journal,
// another sale's callback is applied and answered, and the rail's views
// (deadlines, instructions, memory, the till list) answer at once, the
// hung sales showing their status from before the write. When the writes
// go through, each hung sale ends approved once.
func TestSlowJournalWriteBlocksOnlyItsSale(t *testing.T) {
	h := newHarness(t, sandbox.Options{}, func(o *mpesa.Options) {
		// No queries: the outcomes come from the callbacks posted here.
		o.Poll = mpesa.PollPolicy{First: time.Hour, Every: time.Hour, MaxBackoff: time.Hour, Budget: 2 * time.Hour, Reconcile: time.Hour}
	})
	registered(t, h)
	h.fake.Next(sandbox.Outcome{Code: "1037", Drop: true, Delay: time.Minute})
	a := h.start("0708374149", 10)
	h.fake.Next(sandbox.Outcome{Code: "1037", Drop: true, Delay: time.Minute})
	b := h.start("0708374149", 20)
	c := h.startC2B(30, "")
	h.waitStatus(a, payment.StatusAcknowledged)
	h.waitStatus(b, payment.StatusAcknowledged)
	h.waitStatus(c, payment.StatusSent)

	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the harness closes
	hung := make(chan string, 2)
	h.j.SetAppendHook(func(ev payment.Event) {
		if (ev.TxnID == a || ev.TxnID == c) && ev.Kind == payment.KindTransition && ev.Status == payment.StatusApproved {
			hung <- ev.TxnID
			<-release
		}
	})
	t.Cleanup(func() { h.j.SetAppendHook(nil) })

	var writers sync.WaitGroup
	writers.Add(2)
	go func() {
		defer writers.Done()
		post(t, h.rail.STKCallbackURL(), stkCallback(h.checkoutOf(a), "10", "TLA0000001", "254708374149"))
	}()
	go func() {
		defer writers.Done()
		if _, st, err := h.fake.SimulateC2B(context.Background(), sandbox.C2B{Amount: "30", BillRef: c, MSISDN: "254708374149"}); err != nil || st != http.StatusOK {
			t.Errorf("C2B for %s: status %d, %v", c, st, err)
		}
	}()
	for range 2 {
		select {
		case <-hung:
		case <-time.After(10 * time.Second):
			t.Fatal("the approvals never reached the journal")
		}
	}

	within(t, "another sale's callback", func() {
		post(t, h.rail.STKCallbackURL(), stkCallback(h.checkoutOf(b), "20", "TLB0000002", "254708374149"))
	})
	h.waitStatus(b, payment.StatusApproved)
	within(t, "Deadline of the hung STK sale", func() {
		if what, _, ok := h.rail.Deadline(a); !ok || what != "the customer's PIN" {
			t.Errorf("Deadline(%s) = %q, %v: want the PIN, the approval not being journaled yet", a, what, ok)
		}
	})
	within(t, "Deadline of the hung paybill sale", func() { h.rail.Deadline(c) })
	within(t, "Instructions of the hung paybill sale", func() {
		if in, ok := h.rail.Instructions(c); !ok || in.Until.IsZero() {
			t.Errorf("Instructions(%s) = %+v, %v", c, in, ok)
		}
	})
	within(t, "C2B validation of the hung paybill sale", func() {
		body := `{"TransactionType":"Pay Bill","TransID":"TLC0000003","TransTime":"20261204102115","TransAmount":"30",` +
			`"BusinessShortCode":"` + sandbox.DefaultShortCode + `","BillRefNumber":"` + c + `","MSISDN":"2547 ***** 149","FirstName":"A"}`
		resp, err := http.Post(h.rail.ValidationURL(), "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(got), "Accepted") {
			t.Errorf("validation for %s: %d %s, want it accepted (its approval is not journaled yet)", c, resp.StatusCode, got)
		}
	})
	within(t, "Deadline of another sale", func() {
		if _, _, ok := h.rail.Deadline(b); ok {
			t.Errorf("Deadline(%s) still waits after its approval", b)
		}
	})
	within(t, "Memory", func() {
		if m := h.rail.Memory(); m.Open != 2 {
			t.Errorf("Memory().Open = %d, want 2 (the hung sales)", m.Open)
		}
	})
	within(t, "TillPayments", func() { h.rail.TillPayments() })

	once.Do(func() { close(release) })
	writers.Wait()
	for _, id := range []string{a, c} {
		h.waitStatus(id, payment.StatusApproved)
		if n := h.count(id, isTransition(payment.StatusApproved)); n != 1 {
			t.Errorf("%s: %d approvals:%s", id, n, h.history(id))
		}
	}
}

// post posts body to url and fails the test unless it is answered 200.
func post(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST %s answered %d", url, resp.StatusCode)
	}
}
