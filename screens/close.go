package screens

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Closing a connection. The Android app (OkHttp) never answers a
// server's close frame, and its reader stops on it: after one it is deaf,
// "connected", until a write fails, and that write is a customer's tap.
// So paydesk drops the app's TCP connection without a close frame (as
// when it stops answering pings): its reader sees the connection end and
// it reconnects 5 s later. Other clients (the browser page) get the close
// frame with its status, and their TCP connection is dropped closeWait
// later if they do not answer it.

// closeWait bounds how long a close frame waits for its answer.
const closeWait = time.Second

// connKey is the request context's key for the TCP connection under a
// WebSocket (see Server.Serve's ConnContext).
type connKey struct{}

// drop ends the TCP connection at once with a reset (SO_LINGER 0): the
// peer's next read or write fails rather than succeeding into the void.
func (c *conn) drop() {
	if nc := c.raw; nc != nil {
		if tc, ok := nc.(*tls.Conn); ok {
			nc = tc.NetConn()
		}
		if tcp, ok := nc.(*net.TCPConn); ok {
			tcp.SetLinger(0)
		}
		nc.Close()
	}
	c.ws.CloseNow()
}

// closeWith ends the connection with code and reason: for the app, by
// dropping it; for others, with a close frame, then dropping it if
// unanswered within closeWait. It blocks up to closeWait: call it without
// a lock held.
func (c *conn) closeWith(code websocket.StatusCode, reason string, app bool) {
	if app {
		c.drop()
		return
	}
	done := make(chan struct{})
	go func() {
		c.ws.Close(code, reason)
		close(done)
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.drop()
		<-done
	}
}

// rejectBucket limits how many refusals reach the journal, across all
// connections (see rejectRate).
type rejectBucket struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int
}

// allow takes a token if there is one; it reports how many refusals were
// left out of the journal since the last one allowed.
func (b *rejectBucket) allow(now time.Time) (ok bool, dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = rejectBurst
	} else {
		b.tokens = min(rejectBurst, b.tokens+now.Sub(b.last).Seconds()*rejectRate)
	}
	b.last = now
	if b.tokens < 1 {
		b.dropped++
		return false, 0
	}
	b.tokens--
	dropped, b.dropped = b.dropped, 0
	return true, dropped
}
