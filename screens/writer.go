package screens

import (
	"context"
	"errors"

	"github.com/coder/websocket"
)

// maxQueued bounds the frames waiting to be written to one display. A
// write to a socket with room in its send buffer returns at once, so the
// queue grows only once that buffer (tens of kilobytes: hundreds of
// frames of a few hundred bytes) is full; a display is sent a few frames
// per screen, so 64 more is dozens of screens behind, which only a
// display that stopped reading (its TCP window full) reaches. Past it the
// connection is closed rather than queued for without bound: each frame
// is journaled, and the reconnect shows the display its current screen,
// so the frames dropped with the connection are not missed.
const maxQueued = 64

var (
	// errTooSlow is push's answer when the queue is full; the connection
	// is then closing.
	errTooSlow = errors.New("display too slow")
	// errClosing is push's answer once the connection is closing.
	errClosing = errors.New("connection closing")
)

// outFrame is a frame waiting to be written, with the display's label for
// the writer's log (the writer does not take the display's lock).
type outFrame struct {
	raw   []byte
	label string
}

// push queues raw for the connection's writer without blocking, so no
// network I/O happens under the display's lock: a display that stops
// reading must not hold up the bus's outcomes for the others. Frames are
// written in the order pushed. The writer is a goroutine that runs only
// while frames wait, so an idle display costs none.
func (c *conn) push(f outFrame) error {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.shut {
		return errClosing
	}
	if len(c.out) >= maxQueued {
		c.dropLocked()
		return errTooSlow
	}
	c.out = append(c.out, f)
	if !c.writing {
		c.writing = true
		go c.drain()
	}
	return nil
}

// drain writes the queued frames in order, each within WriteTimeout, and
// ends when the queue is empty. A write that fails or times out closes the
// connection; its reader then detaches the session, which waits for the
// display to reconnect.
func (c *conn) drain() {
	life, stop := c.s.life()
	defer stop()
	for {
		c.outMu.Lock()
		if c.shut || len(c.out) == 0 {
			c.writing = false
			c.outMu.Unlock()
			return
		}
		f := c.out[0]
		c.out[0] = outFrame{}
		c.out = c.out[1:]
		c.outMu.Unlock()

		ctx, cancel := context.WithTimeout(life, c.s.opts.WriteTimeout)
		err := c.ws.Write(ctx, websocket.MessageText, f.raw)
		cancel()
		if err == nil {
			continue
		}
		// A connection shut by someone else (its reader, a replacement,
		// the server's Close, a full queue) fails its writes too: whoever
		// shut it closes it and says why. A timeout is always reported:
		// the library closes the connection when a write's context ends,
		// so the reader may have seen it and shut the queue first.
		first := c.shutdown()
		switch {
		case life.Err() != nil:
		case errors.Is(err, context.DeadlineExceeded):
			c.s.log.Warn("display write timed out; closing", "display", f.label, "remote", c.addr, "timeout", c.s.opts.WriteTimeout)
		case first:
			c.s.log.Warn("display write failed; closing", "display", f.label, "remote", c.addr, "err", err)
		}
		if first {
			c.ws.CloseNow()
		}
	}
}

// shutdown marks the connection closing: the frames still queued are
// dropped and no more are queued. It reports whether this call did it.
func (c *conn) shutdown() bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.shut {
		return false
	}
	c.dropLocked()
	return true
}

func (c *conn) dropLocked() {
	c.shut = true
	clear(c.out)
	c.out = nil
}
