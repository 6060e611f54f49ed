package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// frameReadSize is the first buffer size and the usual read size: a few
// dozen messages per read, and no per-byte system calls.
const frameReadSize = 4096

// FrameReader splits a byte stream from a POS into frames. Messages are
// meant to be newline-delimited, but the real POS and the sample clients
// also write them back to back ("}{") and split them over many reads (the
// reference kiosk loses both), so the reader tracks braces and strings:
//
//   - A raw '\n' ends the current frame, even inside a string (where JSON
//     forbids it): an incomplete object there becomes a malformed frame, so a
//     bad line never swallows the next good one.
//   - Within a line, top-level objects end where their braces balance,
//     outside strings and escapes.
//   - Bytes outside any object, other than whitespace, are returned as a
//     junk frame (up to the next newline or '{'), so the guard rejects them
//     as malformed JSON and logs them.
//   - Whitespace and CR between frames are skipped.
//   - A frame or junk run longer than max is ErrFrameTooLarge; the reader is
//     then finished, since the stream has lost its framing (close the
//     connection). Memory stays bounded by about max bytes.
//
// It is not safe for concurrent use.
type FrameReader struct {
	r   io.Reader
	max int
	buf []byte
	// buf[start:end] holds the bytes read and not yet returned.
	start, end int
	// err is the read error to report once the buffered bytes are used up.
	err error
	// fatal is the sticky ErrFrameTooLarge.
	fatal error
}

// NewFrameReader returns a reader of frames of at most max bytes from r;
// max <= 0 means MaxFrame.
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = MaxFrame
	}
	return &FrameReader{r: r, max: max}
}

// Next returns the next frame. The slice is valid until the next call. At a
// clean end of stream it returns io.EOF; a partial frame before the end is
// returned as a frame first (the guard rejects it). Read errors are
// returned wrapped, after any buffered frames.
func (f *FrameReader) Next() ([]byte, error) {
	if f.fatal != nil {
		return nil, f.fatal
	}
	for {
		for f.start < f.end && isSpace(f.buf[f.start]) {
			f.start++
		}
		if f.start < f.end {
			break
		}
		f.start, f.end = 0, 0
		if f.err != nil {
			return nil, f.err
		}
		f.fill()
	}
	if f.buf[f.start] == '{' {
		return f.object()
	}
	return f.junk()
}

// Byte classes for the scanner: in a string only '"', '\\' and '\n' matter,
// outside one only braces, '"' and '\n'.
var (
	stopInString  = byteSet("\"\\\n")
	stopOutString = byteSet("{}\"\n")
)

// stringFrameStops flags the bytes of x that matter inside a string: a
// quote, a backslash or a newline.
func stringFrameStops(x uint64) uint64 {
	return laneIs(x, '"') | laneIs(x, '\\') | laneIs(x, '\n')
}

// scanInString returns the index of the first byte at or after pos that
// matters inside a string, or len(buf): eight bytes at a time, then one by
// one for the tail.
func scanInString(buf []byte, pos int) int {
	for pos+8 <= len(buf) {
		if m := stringFrameStops(binary.LittleEndian.Uint64(buf[pos:])); m != 0 {
			return pos + bits.TrailingZeros64(m)>>3
		}
		pos += 8
	}
	for pos < len(buf) && !stopInString[buf[pos]] {
		pos++
	}
	return pos
}

func byteSet(s string) (t [256]bool) {
	for i := 0; i < len(s); i++ {
		t[s[i]] = true
	}
	return t
}

// object scans the object starting at buf[start] ('{').
func (f *FrameReader) object() ([]byte, error) {
	pos := f.start
	depth := 0
	inStr, esc := false, false
	for {
		buf := f.buf[:f.end]
		for pos < len(buf) {
			if inStr {
				if esc {
					if buf[pos] != '\n' {
						pos++
					}
					esc = false
					continue
				}
				pos = scanInString(buf, pos)
			} else {
				// Between strings there are only a few bytes (":", ","):
				// a table lookup per byte beats setting up a word scan.
				for pos < len(buf) && !stopOutString[buf[pos]] {
					pos++
				}
			}
			if pos == len(buf) {
				break
			}
			switch buf[pos] {
			case '\n':
				frame := trimSpaceRight(buf[f.start:pos])
				f.start = pos + 1
				return f.emit(frame)
			case '"':
				inStr = !inStr
			case '\\':
				esc = true
			case '{':
				depth++
			case '}':
				if depth--; depth == 0 {
					frame := buf[f.start : pos+1]
					f.start = pos + 1
					return f.emit(frame)
				}
			}
			pos++
		}
		var done bool
		var frame []byte
		if pos, done, frame = f.more(pos); done {
			return f.emit(frame)
		}
		if f.fatal != nil {
			return nil, f.fatal
		}
	}
}

// junk scans a run of bytes outside any object, up to the next newline or
// '{' (which starts the next frame).
func (f *FrameReader) junk() ([]byte, error) {
	pos := f.start
	for {
		buf := f.buf[:f.end]
		for pos < len(buf) && buf[pos] != '\n' && buf[pos] != '{' {
			pos++
		}
		if pos < len(buf) {
			frame := trimSpaceRight(buf[f.start:pos])
			f.start = pos
			if buf[pos] == '\n' {
				f.start++
			}
			return f.emit(frame)
		}
		var done bool
		var frame []byte
		if pos, done, frame = f.more(pos); done {
			return f.emit(frame)
		}
		if f.fatal != nil {
			return nil, f.fatal
		}
	}
}

// more is called when the frame starting at buf[start] is scanned up to pos
// = end without finishing: it fails if the frame is already too long,
// returns the partial frame if the stream has ended, or reads more. It
// returns the new scan position.
func (f *FrameReader) more(pos int) (int, bool, []byte) {
	if pos-f.start > f.max {
		f.tooLarge(pos - f.start)
		return pos, false, nil
	}
	if f.err != nil {
		frame := trimSpaceRight(f.buf[f.start:f.end])
		f.start = f.end
		return pos, true, frame
	}
	if f.start > 0 {
		n := copy(f.buf, f.buf[f.start:f.end])
		pos -= f.start
		f.start, f.end = 0, n
	}
	if f.end == len(f.buf) {
		// The frame fills the buffer: grow it, up to one byte over the cap
		// (enough to see that a frame is too long).
		size := 2 * len(f.buf)
		size = max(size, min(frameReadSize, f.max+1))
		size = min(size, f.max+1)
		nb := make([]byte, size)
		copy(nb, f.buf[:f.end])
		f.buf = nb
	}
	f.fill()
	return pos, false, nil
}

// emit returns a finished frame unless it is over the cap.
func (f *FrameReader) emit(frame []byte) ([]byte, error) {
	if len(frame) > f.max {
		f.tooLarge(len(frame))
		return nil, f.fatal
	}
	return frame, nil
}

func (f *FrameReader) tooLarge(n int) {
	f.fatal = fmt.Errorf("reading frame: more than %d bytes without a frame end (%d so far): %w", f.max, n, ErrFrameTooLarge)
}

// fill reads once into the free end of the buffer, allocating it on first
// use. A reader that keeps returning nothing is an error, as in bufio.
func (f *FrameReader) fill() {
	if f.buf == nil {
		f.buf = make([]byte, min(frameReadSize, f.max+1))
	}
	for range 100 {
		n, err := f.r.Read(f.buf[f.end:])
		f.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				f.err = io.EOF
			} else {
				f.err = fmt.Errorf("reading frames: %w", err)
			}
			return
		}
		if n > 0 {
			return
		}
	}
	f.err = fmt.Errorf("reading frames: %w", io.ErrNoProgress)
}

func trimSpaceRight(b []byte) []byte {
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
