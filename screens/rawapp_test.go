package screens

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawApp is the app's connection as OkHttp runs it, on a bare TCP
// socket: once a close frame arrives its reader stops (the app's
// listener has no onClosing, so it neither answers nor notices), and
// only a dropped connection seen by the reader before that, or a failed
// write after, tells it the server is gone.
type rawApp struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	ip   string
	// frames carries what the reader saw: text frames, then "close" or
	// "eof: <err>" when it stopped.
	frames chan string
}

func dialRawApp(t testing.TB, url, ip string) *rawApp {
	t.Helper()
	hostport := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
	conn, err := net.DialTimeout("tcp", hostport, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	key := make([]byte, 16)
	rand.Read(key)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", hostport, base64.StdEncoding.EncodeToString(key))
	a := &rawApp{t: t, conn: conn, br: bufio.NewReader(conn), ip: ip, frames: make(chan string, 1024)}
	for {
		line, err := a.br.ReadString('\n')
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	go a.read()
	return a
}

// read is OkHttp's reader loop: frames until a close frame.
func (a *rawApp) read() {
	for {
		var h [2]byte
		if _, err := io.ReadFull(a.br, h[:]); err != nil {
			a.frames <- "eof: " + err.Error()
			return
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(a.br, b[:]); err != nil {
				a.frames <- "eof: " + err.Error()
				return
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(a.br, b[:]); err != nil {
				a.frames <- "eof: " + err.Error()
				return
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(a.br, p); err != nil {
			a.frames <- "eof: " + err.Error()
			return
		}
		switch h[0] & 0x0f {
		case 0x8:
			a.frames <- "close"
			return // the reader stops; nothing answers the close
		case 0x9: // ping: OkHttp answers by itself
			a.writeFrame(0xA, p)
		case 0x1:
			var m Message
			if json.Unmarshal(p, &m) == nil {
				if m.Screen == ScreenInfo {
					a.writeText(fmt.Sprintf(`{"messageType":"DEVICE_INFO","screen":"DEVICE_IP","data":{"deviceIpAddress":%q},"transactionId":%q,"timestamp":1}`, a.ip, m.TransactionID))
					a.writeText(fmt.Sprintf(`{"messageType":"DEVICE_INFO","screen":"DEVICE_SERIAL","data":{"deviceSerialNumber":"unknown"},"transactionId":%q,"timestamp":1}`, m.TransactionID))
				}
			}
			a.frames <- string(p)
		}
	}
}

// writeFrame writes one masked frame (as every client must).
func (a *rawApp) writeFrame(op byte, p []byte) error {
	var b []byte
	b = append(b, 0x80|op)
	switch {
	case len(p) < 126:
		b = append(b, 0x80|byte(len(p)))
	case len(p) < 1<<16:
		b = append(b, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	var mask [4]byte
	rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, c := range p {
		b = append(b, c^mask[i%4])
	}
	a.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := a.conn.Write(b)
	return err
}

func (a *rawApp) writeText(s string) error { return a.writeFrame(0x1, []byte(s)) }

// until reads what the reader saw until ok accepts it, within 10 s.
func (a *rawApp) until(what string, ok func(string) bool) string {
	a.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-a.frames:
			if ok(f) {
				return f
			}
			if f == "close" || strings.HasPrefix(f, "eof") {
				a.t.Fatalf("waiting for %s: reader stopped (%s)", what, f)
			}
		case <-deadline:
			a.t.Fatalf("no %s within 10 s", what)
		}
	}
}

// ended waits for the reader to stop and says how: "close" (a close
// frame: the app is now deaf) or "eof: …" (it noticed).
func (a *rawApp) ended(within time.Duration) string {
	a.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f := <-a.frames:
			if f == "close" || strings.HasPrefix(f, "eof") {
				return f
			}
		case <-deadline:
			return "still open"
		}
	}
}

// dropped reports whether the server dropped the TCP connection within
// d: a read on the socket ends (the test reads it after the app's reader
// stopped).
func (a *rawApp) dropped(d time.Duration) bool {
	a.conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, a.br)
	return err == nil || !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
