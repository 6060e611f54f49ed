package link_test

import (
	"net/http/httptest"
	"testing"

	"paydesk/hub"
	"paydesk/hub/link"
)

// TestOverTLS: an https:// hub URL is a wss:// link, and replication
// works through it (the kiosk trusting the hub's certificate).
func TestOverTLS(t *testing.T) {
	f := newFixture(t)
	tok := f.addKiosk("K1")
	srv := httptest.NewTLSServer(hub.NewServer(f.store, hub.Options{}).Handler())
	defer srv.Close()
	j := openJournal(t)
	last := sales(t, j, "t", 20)
	l, err := link.New(link.Options{URL: srv.URL, Token: tok, KioskID: "K1", Journal: j, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, l)
	waitAcked(t, l, last)
	f.checkReplica(j, "K1")
}
