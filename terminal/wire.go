package terminal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"paydesk/terminal/concert"
	"strings"
	"sync"
	"time"
)

// Port is what the driver needs of a serial port. go.bug.st/serial's Port
// satisfies it, and so do a plain file on a pseudo-terminal and a test's
// scripted fake. Closing it must make a pending Read return.
type Port interface {
	io.ReadWriteCloser
}

// inputFlusher is a port that can drop the bytes received and not read
// yet; go.bug.st/serial's Port is one.
type inputFlusher interface {
	ResetInputBuffer() error
}

// ErrPortLost is wrapped when the port fails under the driver: the cable
// was unplugged (Read reports the port closed, Write EIO).
var ErrPortLost = errors.New("serial port lost")

// ErrStopped is returned by every wait on the line once the driver is
// stopping (its Run context ended): a session in progress is left as it
// stands, and the journal has the payment for the next start.
var ErrStopped = errors.New("terminal driver stopping")

var (
	errTimeout     = errors.New("timed out")
	errInterrupted = errors.New("interrupted")
)

// wire is one open port with the goroutine that reads it. Reads are
// delivered in chunks to the one goroutine that runs the link, which
// takes them a byte at a time with a deadline, so the link layer works the
// same over a serial port, a pseudo-terminal or a pipe, none of which need
// to support read deadlines.
type wire struct {
	port   Port
	name   string
	log    *slog.Logger
	chunks chan []byte
	failed chan struct{}
	quit   chan struct{}
	halted chan struct{} // closed by halt: every wait returns ErrStopped
	err    error         // why the reader stopped; set before failed is closed
	buf    []byte
	dead   error
	timer  *time.Timer

	closeOnce sync.Once
	haltOnce  sync.Once
}

// halt makes every wait on the line, now and later, return ErrStopped.
func (w *wire) halt() { w.haltOnce.Do(func() { close(w.halted) }) }

func newWire(p Port, name string, log *slog.Logger) *wire {
	w := &wire{port: p, name: name, log: log, chunks: make(chan []byte, 64), failed: make(chan struct{}),
		quit: make(chan struct{}), halted: make(chan struct{}), timer: time.NewTimer(time.Hour)}
	w.timer.Stop()
	go w.pump()
	return w
}

func (w *wire) pump() {
	for {
		b := make([]byte, 256)
		n, err := w.port.Read(b)
		if n > 0 {
			select {
			case w.chunks <- b[:n]:
			case <-w.quit:
				return
			}
		}
		if err != nil {
			w.err = err
			close(w.failed)
			return
		}
	}
}

// close closes the port; the reader goroutine ends.
func (w *wire) close() error {
	var err error
	w.closeOnce.Do(func() {
		close(w.quit)
		err = w.port.Close()
	})
	return err
}

// readByte returns the next byte, waiting until deadline (zero: forever)
// or until intr is closed.
func (w *wire) readByte(deadline time.Time, intr <-chan struct{}) (byte, error) {
	select {
	case <-w.halted:
		return 0, ErrStopped
	default:
	}
	for len(w.buf) == 0 {
		if w.dead != nil {
			return 0, w.dead
		}
		select {
		case c := <-w.chunks:
			w.buf = c
			continue
		default:
		}
		var tc <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, errTimeout
			}
			w.timer.Reset(d)
			tc = w.timer.C
		}
		select {
		case c := <-w.chunks:
			w.buf = c
		case <-w.failed:
			select {
			case c := <-w.chunks:
				w.buf = c
			default:
				w.dead = fmt.Errorf("%w: %s: %v", ErrPortLost, w.name, w.err)
			}
		case <-tc:
			return 0, errTimeout
		case <-intr:
			w.timer.Stop()
			return 0, errInterrupted
		case <-w.halted:
			w.timer.Stop()
			return 0, ErrStopped
		}
		w.timer.Stop()
	}
	b := w.buf[0]
	w.buf = w.buf[1:]
	return b, nil
}

// unread puts b back in front of the buffered bytes.
func (w *wire) unread(b byte) {
	w.buf = append([]byte{b}, w.buf...)
}

// buffered reports whether bytes are waiting to be read.
func (w *wire) buffered() bool { return len(w.buf) > 0 || len(w.chunks) > 0 }

// write sends b and logs it.
func (w *wire) write(b []byte) error {
	w.logBytes("serial tx", b)
	if _, err := w.port.Write(b); err != nil {
		w.dead = fmt.Errorf("%w: %s: write: %v", ErrPortLost, w.name, err)
		return w.dead
	}
	return nil
}

// logBytes logs bytes sent or received as hex and as text, with any card
// number masked. The record's time is the timestamp.
func (w *wire) logBytes(msg string, b []byte) {
	if len(b) == 0 {
		return
	}
	m := MaskPAN(b)
	w.log.Info(msg, "port", w.name, "len", len(b), "hex", hexBytes(m), "text", textBytes(m),
		"at", time.Now().Format("15:04:05.000000"))
}

// hexBytes writes b as "02 30 31 …".
func hexBytes(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for i, c := range b {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, digits[c>>4], digits[c&0xF])
	}
	return string(out)
}

var controlNames = map[byte]string{concert.STX: "<STX>", concert.ETX: "<ETX>", concert.EOT: "<EOT>", concert.ENQ: "<ENQ>", concert.ACK: "<ACK>", concert.NAK: "<NAK>"}

// textBytes writes b readably: printable ASCII as is, control bytes by
// name, others as <xx>. The byte after a frame's ETX (the LRC) is always
// shown as <lrc xx>, whatever its value.
func textBytes(b []byte) string {
	var s strings.Builder
	inside, lrc := false, false
	for _, c := range b {
		switch {
		case lrc:
			fmt.Fprintf(&s, "<lrc %02x>", c)
			lrc = false
			continue
		case c == concert.STX:
			inside = true
		case c == concert.ETX && inside:
			inside, lrc = false, true
		}
		switch {
		case controlNames[c] != "":
			s.WriteString(controlNames[c])
		case c >= 0x20 && c < 0x7F:
			s.WriteByte(c)
		default:
			fmt.Fprintf(&s, "<%02x>", c)
		}
	}
	return s.String()
}

// MaskPAN returns a copy of raw link bytes safe to log or journal: in every
// frame long enough to carry a V2 answer's report (offset 12, 55 bytes),
// the digits of the report are replaced by 'X' except the last four; any
// other run of 13 or more digits outside a request or short answer is
// masked the same way. Frames of the request and short-answer sizes (25,
// 26, 34 data bytes) carry no card number and are left as they are.
func MaskPAN(raw []byte) []byte {
	out := append([]byte(nil), raw...)
	i := 0
	for i < len(out) {
		if out[i] != concert.STX {
			k := i
			for k < len(out) && out[k] != concert.STX {
				k++
			}
			maskRuns(out[i:k])
			i = k
			continue
		}
		end := i + 1
		for end < len(out) && out[end] != concert.ETX && out[end] != concert.STX {
			end++
		}
		data := out[i+1 : end]
		switch n := len(data); {
		case n == 25 || n == 26 || n == 34:
		case n >= 67:
			maskDigits(data[12:67], 4)
			maskRuns(data[:12])
			maskRuns(data[67:])
		default:
			maskRuns(data)
		}
		i = end
		if i < len(out) && out[i] == concert.ETX {
			i += 2 // ETX and the LRC, whatever its value
		}
	}
	return out
}

// maskRuns masks runs of 13 or more digits outside frames' known fields.
func maskRuns(b []byte) {
	for i := 0; i < len(b); {
		if b[i] < '0' || b[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j-i >= 13 {
			maskDigits(b[i:j], 4)
		}
		i = j
	}
}

// maskDigits replaces every digit of b by 'X' except the last keep.
func maskDigits(b []byte, keep int) {
	n := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] >= '0' && b[i] <= '9' {
			n++
			if n > keep {
				b[i] = 'X'
			}
		}
	}
}
