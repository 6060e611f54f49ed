package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// maxDepth caps nesting. Python's json fails with RecursionError near 1,000
// levels; stopping earlier only refuses input no POS sends and keeps a 64 KiB
// frame of brackets from driving deep recursion.
const maxDepth = 512

// maxIntDigits is Python's default int_max_str_digits: json.loads refuses an
// integer with more digits, so no peer can sign one.
const maxIntDigits = 4300

// Canonical appends to dst the canonical form of the JSON value in src (bytes
// as received) and returns it: exactly what Python's json.dumps(json.loads(src),
// sort_keys=True, separators=(',', ':')) writes, because that is what the
// MobyPay peers sign. Errors wrap ErrMalformedJSON; on error dst is returned
// unchanged in length.
func Canonical(dst, src []byte) ([]byte, error) {
	if len(src) > maxCanonInput || len(dst) > maxCanonInput {
		return dst, fmt.Errorf("%w: %w: %d bytes after %d, limit %d", ErrMalformedJSON, ErrFrameTooLarge, len(src), len(dst), maxCanonInput)
	}
	pooled := canonPool.Get().(*canonState)
	// Work on a copy on the stack: stores into it need no GC write
	// barriers, which the canonicaliser would otherwise pay on every
	// append while a collection runs.
	c := *pooled
	n := len(dst)
	c.reset(src, dst)
	out, err := c.document()
	c.release()
	*pooled = c
	canonPool.Put(pooled)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// maxCanonInput bounds Canonical's input and dst so that offsets, kept as
// int32 to keep the member table small, cannot overflow even when every
// byte is escaped six-fold. Frames are capped far lower anyway.
const maxCanonInput = 1 << 27

// canonPool recycles canonicaliser scratch space so Canonical, Sign and
// Verify do not allocate it on every call.
var canonPool = sync.Pool{New: func() any { return new(canonState) }}

// canonState is a single-pass canonicaliser: it reads JSON from src and
// writes the canonical form to out as it goes, sorting each object's members
// once they are all written. Its slices are reused between documents.
type canonState struct {
	src []byte
	out []byte
	// members is a stack: each open object owns members[base:].
	members []member
	// keys holds decoded keys that had escapes, also as a stack.
	keys []byte
	// tmp and order are scratch space for reordering an object's members.
	tmp     []byte
	order   []sortEntry
	sortBuf []sortEntry
	// spare is an output buffer for callers that only validate.
	spare []byte
	depth int
	// fields, when set, receives the members of the depth-1 object: the
	// payload whose fields the guard needs.
	fields *payloadFields
	// lastEsc reports whether the last string value had escapes.
	lastEsc bool
}

// member is one object member already written to out.
type member struct {
	// prefix is the key's first 8 bytes, big-endian and zero-padded: it
	// orders almost every pair of keys without touching the bytes.
	prefix uint64
	// key is src[k0:k1], or keys[k0:k1] when inKeys (the key had escapes).
	k0, k1 int32
	// out[o0:o1] is the member's canonical "key":value.
	o0, o1 int32
	inKeys bool
}

// release drops the references to the caller's buffers so a pooled state
// does not keep them alive.
func (c *canonState) release() {
	c.src, c.out, c.fields = nil, nil, nil
}

func (c *canonState) reset(src, out []byte) {
	c.src = src
	c.out = out
	c.members = c.members[:0]
	c.keys = c.keys[:0]
	c.depth = 0
	c.fields = nil
}

// syntax reports malformed input at offset i.
func (c *canonState) syntax(i int, what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrMalformedJSON, what, i)
}

// document canonicalises the whole of src: one value with optional
// whitespace around it.
func (c *canonState) document() ([]byte, error) {
	i := skipWS(c.src, 0)
	i, err := c.value(i)
	if err != nil {
		return c.out, err
	}
	if i = skipWS(c.src, i); i != len(c.src) {
		return c.out, c.syntax(i, "extra data after value")
	}
	return c.out, nil
}

// skipWS returns the index of the first byte at or after i that is not JSON
// whitespace (the four characters Python's json also skips).
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value canonicalises the value starting at src[i] (not whitespace) and
// returns the index just after it.
func (c *canonState) value(i int) (int, error) {
	if i >= len(c.src) {
		return i, c.syntax(i, "unexpected end of input, expecting a value")
	}
	switch b := c.src[i]; b {
	case '{':
		return c.object(i)
	case '[':
		return c.array(i)
	case '"':
		j, esc, err := c.str(i)
		c.lastEsc = esc
		return j, err
	case 't':
		return c.literal(i, "true")
	case 'f':
		return c.literal(i, "false")
	case 'n':
		return c.literal(i, "null")
	case 'N':
		// Python's json accepts NaN and Infinity and writes them back.
		return c.literal(i, "NaN")
	case 'I':
		return c.literal(i, "Infinity")
	default:
		if b == '-' || ('0' <= b && b <= '9') {
			return c.number(i)
		}
	}
	return i, c.syntax(i, "expecting a value")
}

func (c *canonState) literal(i int, lit string) (int, error) {
	if !bytes.HasPrefix(c.src[i:], []byte(lit)) {
		return i, c.syntax(i, "expecting a value")
	}
	c.out = append(c.out, lit...)
	return i + len(lit), nil
}

// scanNumber checks the JSON number grammar at src[i] and returns its end and
// whether Python would read it as a float (it has a fraction or exponent).
func scanNumber(src []byte, i int) (end int, isFloat bool, ok bool) {
	if i < len(src) && src[i] == '-' {
		i++
	}
	switch {
	case i >= len(src):
		return i, false, false
	case src[i] == '0':
		i++
	case '1' <= src[i] && src[i] <= '9':
		for i++; i < len(src) && isDigit(src[i]); i++ {
		}
	default:
		return i, false, false
	}
	if i < len(src) && src[i] == '.' {
		i++
		if i >= len(src) || !isDigit(src[i]) {
			return i, false, false
		}
		for i++; i < len(src) && isDigit(src[i]); i++ {
		}
		isFloat = true
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if i >= len(src) || !isDigit(src[i]) {
			return i, false, false
		}
		for i++; i < len(src) && isDigit(src[i]); i++ {
		}
		isFloat = true
	}
	return i, isFloat, true
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func (c *canonState) number(i int) (int, error) {
	if c.src[i] == '-' && i+1 < len(c.src) && c.src[i+1] == 'I' {
		return c.literal(i, "-Infinity")
	}
	end, isFloat, ok := scanNumber(c.src, i)
	if !ok {
		return end, c.syntax(end, "malformed number")
	}
	var err error
	c.out, err = appendNumber(c.out, c.src[i:end], isFloat)
	if err != nil {
		return end, c.syntax(i, err.Error())
	}
	return end, nil
}

// appendNumber appends the canonical form of a valid JSON number token: a
// float as Python's repr, an integer in canonical decimal.
func appendNumber(dst, num []byte, isFloat bool) ([]byte, error) {
	if !isFloat {
		digits := len(num)
		if num[0] == '-' {
			digits--
		}
		if digits > maxIntDigits {
			return dst, fmt.Errorf("integer of %d digits exceeds Python's %d-digit limit", digits, maxIntDigits)
		}
		if len(num) == 2 && num[0] == '-' && num[1] == '0' {
			return append(dst, '0'), nil
		}
		return append(dst, num...), nil
	}
	if out, ok := appendDecimalFast(dst, num); ok {
		return out, nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil && !math.IsInf(f, 0) && f != 0 {
		// The grammar was checked, so only range errors are possible, and
		// those come back as ±Inf (overflow) or ±0 (underflow) as in Python.
		return dst, fmt.Errorf("number %q: %v", num, err)
	}
	return AppendFloat(dst, f), nil
}

// appendDecimalFast handles the common float text ("10.0", "25.50",
// "0.01"): no exponent, at most 15 significant digits and a magnitude Python
// writes without an exponent. Such a decimal round-trips through float64
// unchanged, so its shortest repr is the text without trailing fraction zeros.
func appendDecimalFast(dst, num []byte) ([]byte, bool) {
	neg := num[0] == '-'
	body := num
	if neg {
		body = num[1:]
	}
	dot := -1
	for k, b := range body {
		switch b {
		case '.':
			dot = k
		case 'e', 'E':
			return dst, false
		}
	}
	if dot < 0 {
		return dst, false
	}
	intPart, frac := body[:dot], body[dot+1:]
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if len(intPart) == 1 && intPart[0] == '0' {
		zeros := 0
		for zeros < len(frac) && frac[zeros] == '0' {
			zeros++
		}
		if zeros > 3 || len(frac)-zeros > 15 {
			return dst, false // Python writes 1e-05 and beyond in exponent form
		}
	} else if len(intPart)+len(frac) > 15 {
		return dst, false
	}
	if neg {
		dst = append(dst, '-')
	}
	dst = append(dst, intPart...)
	dst = append(dst, '.')
	if len(frac) == 0 {
		return append(dst, '0'), true
	}
	return append(dst, frac...), true
}

// AppendFloat appends Python's repr of f: the shortest digits that round-trip,
// in fixed notation with at least one decimal ("10.0", "2.5", "0.0001") when
// the decimal exponent is in [-4, 16), else in exponent form with a sign and
// at least two exponent digits ("1e-05", "1e+16"). NaN and the infinities are
// written as Python's json writes them. Outbound amounts use it so the
// signature matches what the POS recomputes.
func AppendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	k := bytes.IndexByte(e, 'e')
	exp, _ := strconv.Atoi(string(e[k+1:]))
	if exp < -4 || exp >= 16 {
		// Go's 'e' format already matches Python's: "1e-05", "1.5e+16".
		return append(dst, e...)
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
	if bytes.IndexByte(dst[n:], '.') < 0 {
		dst = append(dst, ".0"...)
	}
	return dst
}

func (c *canonState) array(i int) (int, error) {
	if c.depth++; c.depth > maxDepth {
		return i, c.syntax(i, "nesting too deep")
	}
	c.out = append(c.out, '[')
	i = skipWS(c.src, i+1)
	if i < len(c.src) && c.src[i] == ']' {
		c.out = append(c.out, ']')
		c.depth--
		return i + 1, nil
	}
	for {
		var err error
		if i, err = c.value(i); err != nil {
			return i, err
		}
		i = skipWS(c.src, i)
		if i >= len(c.src) {
			return i, c.syntax(i, "unterminated array")
		}
		switch c.src[i] {
		case ',':
			c.out = append(c.out, ',')
			i = skipWS(c.src, i+1)
		case ']':
			c.out = append(c.out, ']')
			c.depth--
			return i + 1, nil
		default:
			return i, c.syntax(i, "expecting ',' or ']'")
		}
	}
}

func (c *canonState) object(i int) (int, error) {
	if c.depth++; c.depth > maxDepth {
		return i, c.syntax(i, "nesting too deep")
	}
	extract := c.fields != nil && c.depth == 1
	objStart := len(c.out)
	base, keyBase := len(c.members), len(c.keys)
	c.out = append(c.out, '{')
	i = skipWS(c.src, i+1)
	if i < len(c.src) && c.src[i] == '}' {
		c.out = append(c.out, '}')
		c.depth--
		return i + 1, nil
	}
	for {
		if i >= len(c.src) || c.src[i] != '"' {
			return i, c.syntax(i, "expecting a property name in double quotes")
		}
		// The member is recorded once its value is done: a nested value
		// pushes its own members first and pops them when it closes.
		o0 := len(c.out)
		kStart := i + 1
		end, esc, err := c.str(i)
		if err != nil {
			return end, err
		}
		var k0, k1 int
		var prefix uint64
		if esc {
			k0 = len(c.keys)
			c.keys = decodeString(c.keys, c.src[kStart:end-1], true)
			k1 = len(c.keys)
			prefix = keyPrefix(c.keys[k0:k1])
		} else {
			k0, k1 = kStart, end-1
			prefix = srcKeyPrefix(c.src, kStart, end-1)
		}
		i = skipWS(c.src, end)
		if i >= len(c.src) || c.src[i] != ':' {
			return i, c.syntax(i, "expecting ':'")
		}
		c.out = append(c.out, ':')
		i = skipWS(c.src, i+1)
		vStart := i
		if i < len(c.src) && c.src[i] == '"' {
			// Most values are strings: skip the dispatch in value.
			i, c.lastEsc, err = c.str(i)
		} else {
			i, err = c.value(i)
		}
		if err != nil {
			return i, err
		}
		n := len(c.members)
		c.members = append(c.members, member{})
		m := &c.members[n]
		m.prefix = prefix
		m.k0, m.k1, m.inKeys = int32(k0), int32(k1), esc
		m.o0, m.o1 = int32(o0), int32(len(c.out))
		if extract {
			key := c.src[k0:k1]
			if esc {
				key = c.keys[k0:k1]
			}
			c.fields.note(key, c.src, vStart, i, c.lastEsc)
		}
		i = skipWS(c.src, i)
		if i >= len(c.src) {
			return i, c.syntax(i, "unterminated object")
		}
		if c.src[i] == ',' {
			c.out = append(c.out, ',')
			i = skipWS(c.src, i+1)
			continue
		}
		if c.src[i] != '}' {
			return i, c.syntax(i, "expecting ',' or '}'")
		}
		break
	}
	c.sortMembers(objStart, base)
	c.members = c.members[:base]
	c.keys = c.keys[:keyBase]
	c.depth--
	return i + 1, nil
}

// key returns a member's decoded key. Valid UTF-8 (and the WTF-8 form of
// lone surrogates) compares bytewise in code point order, which is how
// Python sorts str keys.
func (c *canonState) key(m member) []byte {
	if m.inKeys {
		return c.keys[m.k0:m.k1]
	}
	return c.src[m.k0:m.k1]
}

// compare orders two members by key, in code point order.
func (c *canonState) compare(a, b *member) int {
	if a.prefix != b.prefix {
		if a.prefix < b.prefix {
			return -1
		}
		return 1
	}
	return bytes.Compare(c.key(*a), c.key(*b))
}

// keyPrefix packs the first 8 bytes of k big-endian, zero-padded. Equal
// prefixes say nothing (a short key padded with zeros may equal a longer
// key with NUL bytes), different ones order the keys.
func keyPrefix(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	var p uint64
	for i, b := range k {
		p |= uint64(b) << (56 - 8*i)
	}
	return p
}

// srcKeyPrefix is keyPrefix(src[k0:k1]) with one load when the source has
// eight bytes there (it does for any key followed by its quote and colon
// and a value).
func srcKeyPrefix(src []byte, k0, k1 int) uint64 {
	n := k1 - k0
	if n == 0 {
		return 0
	}
	if k0+8 > len(src) {
		return keyPrefix(src[k0:k1])
	}
	p := binary.BigEndian.Uint64(src[k0:])
	if n < 8 {
		p &= ^uint64(0) << (64 - 8*n)
	}
	return p
}

// sortMembers finishes the object that starts at out[objStart] and whose
// members are members[base:]: it sorts them by key, keeps the last of equal
// keys (as a Python dict does) and closes the brace.
func (c *canonState) sortMembers(objStart, base int) {
	ms := c.members[base:]
	sorted := true
	for j := 1; j < len(ms); j++ {
		if c.compare(&ms[j-1], &ms[j]) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		c.out = append(c.out, '}')
		return
	}
	order := c.order[:0]
	if len(ms) <= 16 {
		// Rank each member by counting the members that sort before it
		// (equal keys by position, so the sort is stable): for a payload's
		// ten keys, mostly one integer comparison per pair.
		order = slices.Grow(order, len(ms))[:len(ms)]
		for i := range ms {
			pi, rank := ms[i].prefix, 0
			for j := range ms {
				pj := ms[j].prefix
				rank += b2i(pj < pi)
				if pj == pi && j != i {
					if d := c.compare(&ms[j], &ms[i]); d < 0 || (d == 0 && j < i) {
						rank++
					}
				}
			}
			order[rank] = sortEntry{pi, int32(i)}
		}
	} else {
		for j := range ms {
			order = append(order, sortEntry{ms[j].prefix, int32(j)})
		}
		c.mergeSort(ms, order)
	}
	c.order = order
	tmp := c.tmp[:0]
	for j, e := range order {
		m := &ms[e.i]
		if j+1 < len(order) && order[j+1].prefix == e.prefix && c.compare(m, &ms[order[j+1].i]) == 0 {
			continue // a later duplicate wins
		}
		if len(tmp) > 0 {
			tmp = append(tmp, ',')
		}
		tmp = append(tmp, c.out[m.o0:m.o1]...)
	}
	c.tmp = tmp
	c.out = append(c.out[:objStart+1], tmp...)
	c.out = append(c.out, '}')
}

// mergeSort sorts order stably by the keys of ms: a bottom-up merge sort
// that needs no closure, so the canonicaliser can stay on the stack.
func (c *canonState) mergeSort(ms []member, order []sortEntry) {
	buf := slices.Grow(c.sortBuf[:0], len(order))[:len(order)]
	src, dst := order, buf
	for width := 1; width < len(order); width *= 2 {
		for lo := 0; lo < len(order); lo += 2 * width {
			mid, hi := min(lo+width, len(order)), min(lo+2*width, len(order))
			i, j, k := lo, mid, lo
			for i < mid && j < hi {
				if c.compare(&ms[src[j].i], &ms[src[i].i]) < 0 {
					dst[k], j = src[j], j+1
				} else {
					dst[k], i = src[i], i+1
				}
				k++
			}
			k += copy(dst[k:], src[i:mid])
			copy(dst[k:], src[j:hi])
		}
		src, dst = dst, src
	}
	if &src[0] != &order[0] {
		copy(order, src)
	}
	c.sortBuf = buf
}

// b2i is 1 for true, 0 for false (the compiler makes it a SETcc).
func b2i(b bool) int {
	var i int
	if b {
		i = 1
	}
	return i
}

// sortEntry is a member's place in the sort: its key prefix and index.
type sortEntry struct {
	prefix uint64
	i      int32
}

// strSafe marks the bytes copied unchanged inside a canonical string:
// printable ASCII except the quote and the backslash.
var strSafe = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// Byte-lane constants for scanning eight bytes at a time.
const (
	lanes1 = 0x0101010101010101
	lanes8 = 0x8080808080808080
)

// laneIs flags (high bit) the bytes of x equal to b. The lowest flag is
// exact; flags above a true one may be false, which is all the scanners
// need: they jump to the lowest.
func laneIs(x uint64, b byte) uint64 {
	y := x ^ (lanes1 * uint64(b))
	return (y - lanes1) &^ y & lanes8
}

// stringStops flags the bytes of x that end a run of strSafe bytes: a
// quote, a backslash, a control character, DEL or a non-ASCII byte.
func stringStops(x uint64) uint64 {
	return laneIs(x, '"') | laneIs(x, '\\') | laneIs(x, 0x7f) | (x-lanes1*0x20)&^x&lanes8 | x&lanes8
}

// str canonicalises the string starting at src[i] (a quote) and returns the
// index after its closing quote and whether it contained escapes.
func (c *canonState) str(i int) (int, bool, error) {
	// Work on locals: storing c.out on every append would cost a GC write
	// barrier each time while a collection runs.
	src, out := c.src, c.out
	out = append(out, '"')
	i++
	esc := false
	for {
		start := i
		for i+8 <= len(src) {
			if stop := stringStops(binary.LittleEndian.Uint64(src[i:])); stop != 0 {
				i += bits.TrailingZeros64(stop) >> 3
				goto found
			}
			i += 8
		}
		for i < len(src) && strSafe[src[i]] {
			i++
		}
	found:
		out = append(out, src[start:i]...)
		if i >= len(src) {
			c.out = out
			return i, esc, c.syntax(i, "unterminated string")
		}
		switch b := src[i]; {
		case b == '"':
			c.out = append(out, '"')
			return i + 1, esc, nil
		case b == '\\':
			esc = true
			r, n, ok := readEscape(src[i:])
			if !ok {
				c.out = out
				return i, esc, c.syntax(i, "invalid escape")
			}
			out = appendEscapedRune(out, r)
			i += n
		case b < 0x20:
			c.out = out
			return i, esc, c.syntax(i, "invalid control character in string")
		case b < utf8.RuneSelf: // 0x7f
			out = appendEscapedRune(out, rune(b))
			i++
		default:
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n == 1 {
				c.out = out
				return i, esc, c.syntax(i, "invalid UTF-8")
			}
			out = appendEscapedRune(out, r)
			i += n
		}
	}
}

// readEscape decodes the escape at b[0] ('\\') as Python's json does: a
// \uXXXX high surrogate followed by a \uXXXX low surrogate is one code point;
// any other surrogate stays a lone surrogate code point.
func readEscape(b []byte) (r rune, n int, ok bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	switch b[1] {
	case '"', '\\', '/':
		return rune(b[1]), 2, true
	case 'b':
		return '\b', 2, true
	case 'f':
		return '\f', 2, true
	case 'n':
		return '\n', 2, true
	case 'r':
		return '\r', 2, true
	case 't':
		return '\t', 2, true
	case 'u':
	default:
		return 0, 0, false
	}
	r, ok = hex4(b[2:])
	if !ok {
		return 0, 0, false
	}
	if 0xd800 <= r && r < 0xdc00 && len(b) >= 8 && b[6] == '\\' && b[7] == 'u' {
		r2, ok := hex4(b[8:])
		if !ok {
			return 0, 0, false // Python fails on the malformed second escape too
		}
		if 0xdc00 <= r2 && r2 < 0xe000 {
			return 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00), 12, true
		}
	}
	return r, 6, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, h := range b[:4] {
		switch {
		case '0' <= h && h <= '9':
			r = r<<4 | rune(h-'0')
		case 'a' <= h && h <= 'f':
			r = r<<4 | rune(h-'a'+10)
		case 'A' <= h && h <= 'F':
			r = r<<4 | rune(h-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

const hexDigits = "0123456789abcdef"

// appendEscapedRune appends code point r as Python's ensure_ascii writer
// does: short escapes for the quote, backslash and \b \f \n \r \t, printable
// ASCII as is, everything else as lowercase \uXXXX (a surrogate pair above
// U+FFFF). Lone surrogates come out as their own \uXXXX escape.
func appendEscapedRune(dst []byte, r rune) []byte {
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	}
	if 0x20 <= r && r < 0x7f {
		return append(dst, byte(r))
	}
	if r >= 0x10000 {
		r -= 0x10000
		dst = appendU4(dst, 0xd800+(r>>10))
		return appendU4(dst, 0xdc00+(r&0x3ff))
	}
	return appendU4(dst, r)
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// decodeString appends the decoded content of a valid JSON string body raw
// (between the quotes). Lone surrogates are written in their generalised
// UTF-8 form when wtf8 is set (so keys keep Python's code point order), else
// as U+FFFD, as Go strings from encoding/json have them.
func decodeString(dst, raw []byte, wtf8 bool) []byte {
	for len(raw) > 0 {
		k := bytes.IndexByte(raw, '\\')
		if k < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:k]...)
		r, n, _ := readEscape(raw[k:])
		raw = raw[k+n:]
		if 0xd800 <= r && r < 0xe000 {
			if wtf8 {
				dst = append(dst, 0xed, byte(0x80|(r>>6)&0x3f), byte(0x80|r&0x3f))
			} else {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			}
			continue
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// AmountMinor converts a received JSON number text ("2.0", "10.5", "100",
// "99.99", "1e2") to integer minor units (two decimals) exactly, without
// going through a float, because money is never a float inside paydesk.
// More than two non-zero decimals, a negative, a non-number or an amount
// beyond int64 minor units is an error wrapping ErrBadAmount.
func AmountMinor(num string) (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("amount %q: %s: %w", num, why, ErrBadAmount)
	}
	end, _, ok := scanNumber([]byte(num), 0)
	if !ok || end != len(num) {
		return bad("not a JSON number")
	}
	neg := num[0] == '-'
	s := num
	if neg {
		s = s[1:]
	}
	mant, exp := s, 0
	if k := indexAnyByte(s, 'e', 'E'); k >= 0 {
		mant = s[:k]
		e := s[k+1:]
		eneg := false
		if e[0] == '+' || e[0] == '-' {
			eneg = e[0] == '-'
			e = e[1:]
		}
		e = trimLeftZeros(e)
		if len(e) > 6 {
			e = "999999" // far beyond any int64; the digit checks below decide
		}
		exp, _ = strconv.Atoi(e)
		if eneg {
			exp = -exp
		}
	}
	digits := mant
	if k := indexAnyByte(mant, '.', '.'); k >= 0 {
		digits = mant[:k] + mant[k+1:]
		exp -= len(mant) - k - 1
	}
	// value = digits × 10^exp; minor units = digits × 10^(exp+2).
	exp += 2
	digits = trimLeftZeros(digits)
	for exp < 0 && len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if digits == "" {
		return 0, nil
	}
	if neg {
		return bad("negative")
	}
	if exp < 0 {
		return bad("more than two decimals")
	}
	if len(digits)+exp > 19 {
		return bad("too large")
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return bad("too large")
	}
	for ; exp > 0; exp-- {
		if v > math.MaxInt64/10 {
			return bad("too large")
		}
		v *= 10
	}
	if v > math.MaxInt64 {
		return bad("too large")
	}
	return int64(v), nil
}

func indexAnyByte(s string, a, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == a || s[i] == b {
			return i
		}
	}
	return -1
}

func trimLeftZeros(s string) string {
	for len(s) > 0 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// FormatAmount writes minor units as the JSON float the POS expects and
// signs: 2550 → "25.5", 1000 → "10.0", 1 → "0.01". The text is Python's repr
// of the nearest float, so it is already canonical.
func FormatAmount(minor int64) string {
	var buf [32]byte
	return string(appendAmount(buf[:0], minor))
}

func appendAmount(dst []byte, minor int64) []byte {
	u := uint64(minor)
	if minor < 0 {
		u = -u
	}
	if u >= 1e15 {
		// Beyond 15 significant digits the decimal may not round-trip:
		// write what Python would write for the nearest float.
		f, _ := strconv.ParseFloat(strconv.FormatInt(minor/100, 10)+"."+fmt.Sprintf("%02d", u%100), 64)
		return AppendFloat(dst, f)
	}
	if minor < 0 {
		dst = append(dst, '-')
	}
	dst = strconv.AppendUint(dst, u/100, 10)
	dst = append(dst, '.')
	switch frac := u % 100; {
	case frac%10 == 0:
		return append(dst, byte('0'+frac/10))
	default:
		return append(dst, byte('0'+frac/10), byte('0'+frac%10))
	}
}
