package mpesa

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"paydesk/mpesa/daraja"
)

// phoneKeys are the JSON keys whose values are phone numbers in Daraja's
// bodies (C2B MSISDN, the STK request's PartyA and PhoneNumber); an STK
// callback's number is the Value of the Item named PhoneNumber.
var phoneKeys = []string{"msisdn", "phonenumber", "partya", "phone"}

// mayHavePhone is true of a body that may hold a phone number: a phone
// field's name, or a run of nine digits.
var mayHavePhone = regexp.MustCompile(`(?i)phone|msisdn|partya|[0-9]{9}`)

// loosePhone finds a Kenyan mobile number written alone (not part of a
// longer run of digits) in a body too broken to decode.
var loosePhone = regexp.MustCompile(`(?:\+?254|0)?[17][0-9]{8}`)

// MaskRaw returns body with every phone number masked as daraja.MaskPhone does,
// so a callback can be journaled as evidence without the payer's number:
// in a JSON body the values of phone fields are replaced in place (a
// number becomes a string, "2547****149"; every other byte is kept); in
// a body that is not JSON, anything shaped like a Kenyan mobile number
// is. The input is not modified.
func MaskRaw(body []byte) []byte {
	if !mayHavePhone.Match(body) {
		return body // no phone field, no number long enough: nothing to walk
	}
	spans, err := phoneSpans(body)
	if err != nil {
		return maskLoose(body)
	}
	if len(spans) == 0 {
		return body
	}
	out := slices.Clone(body)
	slices.SortFunc(spans, func(a, b span) int { return b.start - a.start })
	for _, sp := range spans {
		masked := strconv.Quote(daraja.MaskPhone(sp.value))
		out = slices.Replace(out, sp.start, sp.end, []byte(masked)...)
	}
	return out
}

// span is a scalar value in a body, by byte offsets, and its text.
type span struct {
	start, end int
	value      string
}

// phoneSpans walks body and returns the spans of the phone values.
func phoneSpans(body []byte) ([]span, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	// frame is one open object or array; for objects, key is the key
	// whose value comes next, and name/value the Item fields seen.
	type frame struct {
		object    bool
		key       string
		expectKey bool
		name      string
		value     *span
	}
	var stack []*frame
	var out []span
	prev := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if len(stack) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		end := int(d.InputOffset())
		// The token's own bytes: what was read since the last one, less
		// the separators before it.
		start := end - len(bytes.TrimLeft(body[prev:end], " \t\r\n:,"))
		prev = end
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if delim, ok := tok.(json.Delim); ok {
			switch delim {
			case '{', '[':
				if top != nil && top.object {
					top.expectKey = true
				}
				stack = append(stack, &frame{object: delim == '{', expectKey: delim == '{'})
			case '}', ']':
				if top.object && strings.EqualFold(top.name, "PhoneNumber") && top.value != nil {
					out = append(out, *top.value)
				}
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top != nil && top.object && top.expectKey {
			top.key, _ = tok.(string)
			top.expectKey = false
			continue
		}
		if top == nil || !top.object {
			continue
		}
		top.expectKey = true
		var text string
		switch v := tok.(type) {
		case string:
			text = v
		case json.Number:
			text = v.String()
		default:
			continue // null, true, false
		}
		sp := span{start: start, end: end, value: text}
		switch k := strings.ToLower(top.key); {
		case slices.Contains(phoneKeys, k):
			out = append(out, sp)
		case k == "name":
			top.name = text
		case k == "value":
			top.value = &sp
		}
	}
}

// maskLoose masks what looks like a phone number in a body that is not
// JSON.
func maskLoose(body []byte) []byte {
	idx := loosePhone.FindAllIndex(body, -1)
	if len(idx) == 0 {
		return body
	}
	var out []byte
	last := 0
	for _, m := range idx {
		a, b := m[0], m[1]
		if (a > 0 && isDigit(body[a-1])) || (b < len(body) && isDigit(body[b])) {
			continue // part of a longer number: a date, an id
		}
		out = append(out, body[last:a]...)
		out = append(out, daraja.MaskPhone(strings.TrimPrefix(string(body[a:b]), "+"))...)
		last = b
	}
	return append(out, body[last:]...)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
