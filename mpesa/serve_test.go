package mpesa_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
)

// Serve is the rail's one lifecycle: when its context ends it stops the
// callback server (the listener is closed) and ends the context of the
// push in flight, and it returns only after that push has stopped.
func TestServeStopsCallbacksAndWork(t *testing.T) {
	pushing := make(chan struct{})
	pushCancelled := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/oauth") {
			w.Write([]byte(`{"access_token":"tok","expires_in":"3599"}`))
			return
		}
		io.ReadAll(r.Body) // so the server notices the client hanging up
		close(pushing)
		<-r.Context().Done() // the push hangs until paydesk gives up on it
		close(pushCancelled)
	}))
	defer srv.Close()
	r, _ := stubRail(t, srv.URL, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx, ln) }()
	resp, err := http.Post("http://"+ln.Addr().String()+"/nothing", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("callback server not serving: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path answered %d", resp.StatusCode)
	}
	if _, err := r.Start(context.Background(), payment.Request{Phone: "0708374149", Amount: payment.Money{Minor: 100, Currency: "KES"}}); err != nil {
		t.Fatal(err)
	}
	<-pushing
	stop()
	// Generous: Serve gives callbacks in flight up to ShutdownGrace (5 s),
	// and none is in flight here.
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	// The push's connection was closed before Serve returned; the fake
	// Daraja notices that on its own, so it is waited for (generously).
	select {
	case <-pushCancelled:
	case <-time.After(10 * time.Second):
		t.Error("the push in flight was not cancelled")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the callback listener is still open")
	}
}
