package link_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"paydesk/hub"
	"paydesk/hub/link"
	"paydesk/payment"
)

// killableListener is a replica's listener that can die abruptly: the
// listener and every connection it accepted closed at once, without a
// WebSocket goodbye, as when the process is killed.
type killableListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

func (k *killableListener) Accept() (net.Conn, error) {
	c, err := k.Listener.Accept()
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dead {
		c.Close()
		return nil, net.ErrClosed
	}
	k.conns = append(k.conns, c)
	return c, nil
}

func (k *killableListener) kill() {
	k.mu.Lock()
	k.dead = true
	conns := k.conns
	k.mu.Unlock()
	k.Listener.Close()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not a FIN: nothing more is said
		}
		c.Close()
	}
}

// replica serves a hub replica with a store of its own on dsn, as a
// separate process would; it returns its URL and its listener.
func replica(t *testing.T, dsn string) (string, *killableListener) {
	t.Helper()
	st, err := hub.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &killableListener{Listener: inner}
	srv := hub.NewServer(st, hub.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	return "http://" + inner.Addr().String(), ln
}

// TestFailoverAcrossReplicas: two hub replicas on one PostgreSQL, kiosks
// on both taking payments; one replica dies abruptly mid-stream. Its
// kiosks move to the other, and every kiosk's journal is in PostgreSQL
// once each, in order: nothing lost, nothing twice.
func TestFailoverAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	urlA, lnA := replica(t, f.dsn)
	urlB, _ := replica(t, f.dsn)

	const kiosks = 4
	type kiosk struct {
		id string
		j  *payment.Journal
		l  *link.Link
	}
	var ks []kiosk
	for i := range kiosks {
		id := fmt.Sprintf("K%d", i)
		tok := f.addKiosk(id)
		j := openJournal(t)
		// Half the fleet lists A first, half B: both replicas serve.
		urls := urlA + "," + urlB
		if i%2 == 1 {
			urls = urlB + "," + urlA
		}
		l := f.runLink(j, id, tok, func(o *link.Options) { o.URL, o.Batch = urls, 25 })
		ks = append(ks, kiosk{id, j, l})
	}
	// Each kiosk takes payments until told to stop.
	ctx, stopSales := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, k := range ks {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				sales(t, k.j, fmt.Sprintf("p%d", i), 8)
			}
		})
	}
	defer func() { stopSales(); wg.Wait() }()
	// Mid-stream: every kiosk connected and some of its events
	// acknowledged; then A dies.
	for _, k := range ks {
		waitAcked(t, k.l, 50)
	}
	onA := 0
	for _, k := range ks {
		if k.l.Status().Hub == urlA {
			onA++
		}
	}
	if onA == 0 {
		t.Fatal("no kiosk on replica A before it died")
	}
	lnA.kill()
	// The kiosks keep paying while they move; then they stop, and each
	// must get everything to the hub.
	for _, k := range ks {
		before := k.l.Status().AckedSeq
		waitAcked(t, k.l, before+50)
	}
	stopSales()
	wg.Wait()
	for _, k := range ks {
		last, err := k.j.LastSeq(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		waitAcked(t, k.l, last)
		if st := k.l.Status(); st.Hub != urlB {
			t.Errorf("%s is on %s after A died; want B %s", k.id, st.Hub, urlB)
		}
		f.checkReplica(k.j, k.id)
	}
}

// TestAllReplicasDownThenOneComesUp: with every replica unreachable the
// link keeps trying them in turn; it connects as soon as one comes up.
func TestAllReplicasDownThenOneComesUp(t *testing.T) {
	f := newFixture(t)
	tok := f.addKiosk("K1")
	j := openJournal(t)
	last := sales(t, j, "a", 20)
	// A is an address where nothing listens; B is f's hub, started late.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	l := f.runLink(j, "K1", tok, func(o *link.Options) { o.URL = dead + "," + f.url() })
	f.startHub()
	waitAcked(t, l, last)
	f.checkReplica(j, "K1")
}
