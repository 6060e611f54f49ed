package terminal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal/concert"
)

// fakePort is an in-memory serial port: the test plays the terminal,
// scripting the bytes the driver reads and checking the bytes it wrote.
type fakePort struct {
	in      chan []byte   // terminal → driver
	out     chan byte     // driver → terminal, for the script to read
	closed  chan struct{} // the cable is unplugged
	once    sync.Once
	pending []byte // what Read has not handed over yet (pump goroutine only)

	mu      sync.Mutex
	written []byte // everything the driver wrote
}

var errFakeClosed = errors.New("fake port: port has been closed")

func newFakePort() *fakePort {
	return &fakePort{in: make(chan []byte, 64), out: make(chan byte, 1<<16), closed: make(chan struct{})}
}

func (p *fakePort) Read(b []byte) (int, error) {
	if len(p.pending) == 0 {
		select {
		case c := <-p.in:
			p.pending = c
		case <-p.closed:
			return 0, errFakeClosed
		}
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

func (p *fakePort) Write(b []byte) (int, error) {
	select {
	case <-p.closed:
		return 0, syscall.EIO
	default:
	}
	p.mu.Lock()
	p.written = append(p.written, b...)
	p.mu.Unlock()
	for _, c := range b {
		p.out <- c
	}
	return len(b), nil
}

// ResetInputBuffer drops what the terminal sent before the port was
// opened, as go.bug.st/serial's does with TCIFLUSH. It runs before the
// driver starts reading.
func (p *fakePort) ResetInputBuffer() error {
	for {
		select {
		case <-p.in:
		default:
			return nil
		}
	}
}

func (p *fakePort) Close() error {
	p.unplug()
	return nil
}

// unplug makes Read fail at once and Write fail with EIO, as a pty whose
// master was closed does.
func (p *fakePort) unplug() { p.once.Do(func() { close(p.closed) }) }

// Written is everything the driver wrote so far.
func (p *fakePort) Written() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.written)
}

// scriptWait is how long the scripted terminal waits for the driver.
const scriptWait = 5 * time.Second

// term is the scripted terminal on one fake port.
type term struct {
	t testing.TB
	p *fakePort
}

// send writes bytes to the driver as one read.
func (m term) send(b ...byte) { m.t.Helper(); m.p.in <- bytes.Clone(b) }

// next returns the next byte the driver writes.
func (m term) next() byte {
	m.t.Helper()
	select {
	case b := <-m.p.out:
		return b
	case <-time.After(scriptWait):
		m.t.Fatalf("terminal: nothing from the driver within %s (it wrote % x)", scriptWait, m.p.Written())
		return 0
	}
}

// expect checks the driver writes exactly b next.
func (m term) expect(b ...byte) {
	m.t.Helper()
	for i, want := range b {
		if got := m.next(); got != want {
			m.t.Fatalf("terminal: byte %d from the driver is 0x%02X, want 0x%02X (it wrote % x)", i, got, want, m.p.Written())
		}
	}
}

// frame reads a frame the driver writes and checks its LRC.
func (m term) frame() []byte {
	m.t.Helper()
	if b := m.next(); b != concert.STX {
		m.t.Fatalf("terminal: 0x%02X from the driver, want STX (it wrote % x)", b, m.p.Written())
	}
	var data []byte
	for {
		b := m.next()
		if b == concert.ETX {
			break
		}
		data = append(data, b)
	}
	if l := m.next(); l != concert.LRC(data) {
		m.t.Fatalf("terminal: frame %q with LRC 0x%02X, want 0x%02X", data, l, concert.LRC(data))
	}
	return data
}

// quiet checks the driver writes nothing for d.
func (m term) quiet(d time.Duration) {
	m.t.Helper()
	select {
	case b := <-m.p.out:
		m.t.Fatalf("terminal: driver wrote 0x%02X, want silence (it wrote % x)", b, m.p.Written())
	case <-time.After(d):
	}
}

// request plays the terminal's side of a send session that it accepts:
// ACK the ENQ, read the request, ACK it, read the EOT.
func (m term) request() concert.Request {
	m.t.Helper()
	m.expect(concert.ENQ)
	m.send(concert.ACK)
	data := m.frame()
	q, err := concert.ParseRequest(data)
	if err != nil {
		m.t.Fatalf("terminal: driver's request %q: %v", data, err)
	}
	m.send(concert.ACK)
	m.expect(concert.EOT)
	return q
}

// answer plays the terminal's session with the answer frame, as one read
// per step, and reads the driver's ACKs; eot says whether to close it.
func (m term) answer(data []byte, eot bool) {
	m.t.Helper()
	m.send(concert.ENQ)
	m.expect(concert.ACK)
	m.send(concert.Frame(data)...)
	m.expect(concert.ACK)
	if eot {
		m.send(concert.EOT)
	}
}

// reply builds the terminal's answer to q: status, mode and report.
func reply(t testing.TB, q concert.Request, status byte, full bool) []byte {
	t.Helper()
	a := concert.Answer{POS: q.POS, Status: status, Amount: q.Amount, Mode: '1', Currency: q.Currency, Private: q.Private}
	if full {
		a.Report = "497010XXXXXX1234"
	}
	data, err := a.Encode(full)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fastTimers keeps the tests quick: long enough for a loaded machine to
// answer a scripted byte, short enough that timeouts cost little.
var fastTimers = Timers{Ack: 400 * time.Millisecond, InterByte: 400 * time.Millisecond, ENQPause: 20 * time.Millisecond,
	Result: 2 * time.Second, EOT: 400 * time.Millisecond}

// harness is a Driver on fake ports with a real journal and bus.
type harness struct {
	t     *testing.T
	j     *payment.Journal
	bus   *payment.Bus
	sub   *payment.Subscription
	d     *Driver
	ports chan *fakePort // each Open takes the next
	cur   *fakePort
	stop  context.CancelFunc
	done  chan struct{}
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHarness opens a journal in a temporary directory and a driver whose
// Open hands out fake ports; modify adjusts the options. The first port is
// open and its health probe answered when it returns.
func newHarness(t *testing.T, modify func(*Options)) *harness {
	t.Helper()
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, j: j, ports: make(chan *fakePort, 8), done: make(chan struct{}), logs: &syncBuffer{}}
	h.bus = payment.NewBus(j, nil)
	h.sub = h.bus.Subscribe(4096)
	opts := Options{
		Timers:         fastTimers,
		ProbeInterval:  -1,
		ReopenInterval: 20 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Open: func() (Port, error) {
			select {
			case p := <-h.ports:
				return p, nil
			default:
				return nil, &PortError{Path: "fake", Kind: ErrPortMissing}
			}
		},
	}
	if modify != nil {
		modify(&opts)
	}
	h.d, err = NewDriver(h.bus, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	h.plug()
	go func() {
		defer close(h.done)
		h.d.Run(ctx)
	}()
	t.Cleanup(h.close)
	h.probed()
	return h
}

// plug queues a new fake port for the driver's next Open.
func (h *harness) plug() *fakePort {
	p := newFakePort()
	h.ports <- p
	h.cur = p
	return p
}

// term is the scripted terminal on the current port.
func (h *harness) term() term { return term{t: h.t, p: h.cur} }

// probed answers the health probe the driver sends on opening a port.
func (h *harness) probed() {
	h.t.Helper()
	m := h.term()
	m.expect(concert.ENQ)
	m.send(concert.ACK)
	m.expect(concert.EOT)
	h.waitFor("health ok", func(payment.Event) bool { return h.d.Health().State == HealthOK })
}

func (h *harness) close() {
	h.stop()
	<-h.done
	h.sub.Close()
	h.bus.Close()
	h.j.Close()
	if h.t.Failed() {
		h.t.Logf("driver log:\n%s", h.logs.String())
	}
}

// start begins a payment of amount minor units of EUR.
func (h *harness) start(mode payment.Mode, amount int64) string {
	h.t.Helper()
	id, err := h.d.Start(context.Background(), payment.Request{Mode: mode, Amount: payment.Money{Minor: amount, Currency: "EUR"}})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// waitFor waits until an event satisfies ok (or ok holds already, checked
// on each event and every 10 ms).
func (h *harness) waitFor(what string, ok func(payment.Event) bool) payment.Event {
	h.t.Helper()
	deadline := time.After(scriptWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev := <-h.sub.C():
			if ok(ev) {
				return ev
			}
		case <-tick.C:
			if ok(payment.Event{}) {
				return payment.Event{}
			}
		case <-deadline:
			h.t.Fatalf("waiting for %s: not within %s", what, scriptWait)
			return payment.Event{}
		}
	}
}

// final waits for the transaction to reach a final status and returns it.
func (h *harness) final(id string) payment.Txn {
	h.t.Helper()
	h.waitFor(id+" final", func(ev payment.Event) bool {
		return ev.TxnID == id && ev.Kind == payment.KindTransition && ev.Status.Final()
	})
	return h.txn(id)
}

// status waits for the transaction to reach st (final or not).
func (h *harness) status(id string, st payment.Status) payment.Txn {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%s %s", id, st), func(ev payment.Event) bool {
		return ev.TxnID == id && ev.Kind == payment.KindTransition && ev.Status == st
	})
	return h.txn(id)
}

func (h *harness) txn(id string) payment.Txn {
	h.t.Helper()
	tx, err := h.j.Txn(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return tx
}

// history is the transaction's events from the journal.
func (h *harness) history(id string) []payment.Event {
	h.t.Helper()
	evs, err := h.j.History(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// idle waits until the driver has no payment in flight.
func (h *harness) idle() {
	h.t.Helper()
	h.waitFor("driver idle", func(payment.Event) bool { _, busy := h.d.Current(); return !busy })
}

// kinds counts the events of each kind in evs.
func kinds(evs []payment.Event) map[payment.Kind]int {
	m := map[payment.Kind]int{}
	for _, ev := range evs {
		m[ev.Kind]++
	}
	return m
}

// statuses lists the transitions of evs in order.
func statuses(evs []payment.Event) []payment.Status {
	var out []payment.Status
	for _, ev := range evs {
		if ev.Kind == payment.KindTransition {
			out = append(out, ev.Status)
		}
	}
	return out
}

func hasDetail(evs []payment.Event, kind payment.Kind, sub string) bool {
	return slices.ContainsFunc(evs, func(ev payment.Event) bool {
		return ev.Kind == kind && strings.Contains(ev.Detail, sub)
	})
}

func wantStatuses(t testing.TB, evs []payment.Event, want ...payment.Status) {
	t.Helper()
	if got := statuses(evs); !slices.Equal(got, want) {
		t.Errorf("transitions %v, want %v", got, want)
	}
}

// mark is how many bytes the driver has written on the current port.
func (h *harness) mark() int { return len(h.cur.Written()) }

// since is what the driver wrote on the current port after mark.
func (h *harness) since(mark int) []byte { return h.cur.Written()[mark:] }
