#!/usr/bin/env python3
"""Regenerates the canonical-JSON expectations from Python itself.

The MobyPay peers sign json.dumps(payload, sort_keys=True, separators=(',', ':')),
so the only authority on the canonical form is Python. Run from this directory
with Python 3.11 (int_max_str_digits = 4300):

    python3 gen.py

It writes cases.json (tricky payloads), floats.json (float reprs),
amounts.json (minor units -> repr(minor / 100)) and random.json (random
payloads and mutated copies, valid or not). The Go tests read these
files and never need Python.
"""
import json
import random
import struct


def canon(text):
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


CASES = [
    ("float ten", '{"amount": 10.0}'),
    ("float two and a half", '{"amount":2.50}'),
    ("float one tenth", '[0.1, 0.10, 1.0e-1]'),
    ("float 1e-05", '[1e-05, 0.00001, 1E-5, 0.0001]'),
    ("float 1e+16 and 1e16", '[1e+16, 1e16, 1E16, 10000000000000000.0, 1e15, 999999999999999.9]'),
    ("float 1E5", '[1E5, 1e5, 1.5E+5]'),
    ("float with many digits", '[123456789.125, 0.30000000000000004, 3.141592653589793238462643383279]'),
    ("negative zero", '[-0.0, -0, 0, 0.0, -0e10]'),
    ("subnormal and extremes", '[5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 4.9e-324]'),
    ("overflow and underflow", '[1e400, -1e400, 1e-400, -1e-400]'),
    ("python literals", '[NaN, Infinity, -Infinity]'),
    ("integers", '[0, -0, 7, -7, 123456789012345678901234567890, -123456789012345678901234567890]'),
    ("integer at python's digit limit", '[' + '9' * 4300 + ']'),
    ("unicode raw", '{"name": "Caf\u00e9 \u4e2d\u6587"}'),
    ("unicode escaped uppercase", '{"name": "Caf\\u00E9 \\u4E2D\\u6587"}'),
    ("emoji raw", '{"e": "\U0001F600 ok"}'),
    ("emoji as surrogate escapes", '{"e": "\\ud83d\\ude00", "E": "\\uD83D\\uDE00"}'),
    ("lone surrogates", '["\\ud800", "\\udc00", "\\ud800\\u0041", "\\udbff\\udfff", "\\ude00\\ud83d"]'),
    ("control characters", '["\\u0001\\u001f\\u007f", "\\b\\f\\n\\r\\t", "\\u0000"]'),
    ("raw DEL and C1", '["\x7f", "\u0080\u009f", "\u2028\u2029"]'),
    ("no html escaping", '{"html": "<a href=\\"x\\">&amp;</a>", "slash": "a/b", "esc": "a\\/b"}'),
    ("quotes and backslashes", '["\\"", "\\\\", "\\\\\\"", "a\\\\nb"]'),
    ("escaped printable ascii", '["\\u0041\\u0062\\u0020\\u007e", "\\u0022\\u005c\\u002f"]'),
    ("ipp plans like the docs", '''{"type":"transaction_result","txn_id":"TXN1","status":"ipp_plans","pos_id":"POS001",
        "plans":[{"planId":"IPP_3M","frequency":"Monthly","totalInstallments":3,"installmentDetails":[
        {"installmentNumber":1,"date":"2024-02-15","amount":35.00,"installmentFee":1.50,"installmentFeePercentage":1.5},
        {"installmentNumber":2,"date":"2024-03-15","amount":35.00,"installmentFee":1.50,"installmentFeePercentage":1.5},
        {"installmentNumber":3,"date":"2024-04-15","amount":35.00,"installmentFee":1.50,"installmentFeePercentage":1.5}]},
        {"planId":"pay-in-full","frequency":"","totalInstallments":0,"installmentDetails":[]}],
        "amount":105.0,"timestamp":"1757492763490","nonce":"K6LQxCh2CAE2NB8Do3HOrw=="}'''),
    ("empty object and array", '{"a": {}, "b": [], "c": [{}, []], "d": {"": []}}'),
    ("top-level empty object", '{}'),
    ("top-level scalar", '"just a string"'),
    ("duplicate keys last wins", '{"a": 1, "b": 2, "a": 3}'),
    ("duplicate keys nested and in order", '{"z": {"k": 1, "k": {"x": 1}, "j": 0}, "a": 1, "z": {"k": 2, "k": 3}}'),
    ("duplicate payload key spelled with an escape", '{"type": "a", "\\u0074ype": "b"}'),
    ("deep nesting", '{"a":' * 100 + '1' + '}' * 100),
    ("deep arrays", '[' * 300 + ']' * 300),
    ("unicode key order", '{"\u00e9": 1, "z": 2, "\U0001F600": 3, "\uff61": 4, "A": 5, "\u4e2d": 6, "": 7}'),
    ("escaped key order with lone surrogates", '{"\\ue000": 1, "\\ud800": 2, "\\ud83d\\ude00": 3, "\\uffff": 4, "\\u007f": 5}'),
    ("key order is code points not utf-16", '{"\\uff61": 1, "\\ud83d\\ude00": 2}'),
    ("whitespace everywhere", ' \t\r\n{ "b" :\n[ 1 ,\t2 ] ,\r\n "a" : { } } \n '),
    ("sorted keys already", '{"a":1,"b":2,"c":3}'),
    ("many keys", '{' + ','.join('"k%02d": %d' % (i, 40 - i) for i in reversed(range(40))) + '}'),
    ("booleans and null", '{"t": true, "f": false, "n": null}'),
    ("real card request payload", '{"type": "transaction_request", "txn_id": "TXN1757492341554", "amount": 10.0, "payment_mode": "card", "kiosk_id": "KIOSK001", "timestamp": "1757492341555", "nonce": "8915fea5-ad40-4c7c-b0a9-86665c66013e"}'),
    ("timestamp as integer", '{"timestamp": 1757492341555, "nonce": "n", "type": "ack"}'),
]

ERRORS = [
    ("trailing comma in object", '{"a": 1,}'),
    ("trailing comma in array", '[1,]'),
    ("single quotes", "{'a': 1}"),
    ("unquoted key", '{a: 1}'),
    ("leading zero", '[01]'),
    ("bare dot fraction", '[1.]'),
    ("dangling exponent", '[1e]'),
    ("plus sign", '[+1]'),
    ("raw control character in string", '["a\tb"]'),
    ("raw newline in string", '["a\nb"]'),
    ("bad escape", '["\\x41"]'),
    ("short unicode escape", '["\\u12"]'),
    ("bad second surrogate escape", '["\\ud800\\uzzzz"]'),
    ("unterminated string", '["abc'),
    ("unterminated object", '{"a": 1'),
    ("extra data", '{} {}'),
    ("empty input", ''),
    ("only whitespace", ' \n'),
    ("integer beyond python's digit limit", '[' + '9' * 4301 + ']'),
    ("negative NaN", '[-NaN]'),
    ("lowercase literal", '[nan]'),
    ("byte order mark", '\ufeff{}'),
    ("comment", '{} // x'),
]


def cases():
    out = []
    for name, text in CASES:
        out.append({"name": name, "input": text, "output": canon(text)})
    for name, text in ERRORS:
        try:
            json.loads(text)
        except ValueError:
            out.append({"name": name, "input": text, "error": True})
            continue
        raise SystemExit("python accepted error case %r" % name)
    return out


def floats():
    rnd = random.Random(20240915)
    texts = set()
    for _ in range(1500):
        bits = rnd.getrandbits(64)
        f = struct.unpack("<d", struct.pack("<Q", bits))[0]
        if f != f or f in (float("inf"), float("-inf")):
            continue
        texts.add("%.17g" % f if "e" in "%.17g" % f or "." in "%.17g" % f else "%.17g.0" % f)
    for _ in range(1500):
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 20))).lstrip("0") or "0"
        exp = rnd.randint(-30, 30)
        texts.add("%se%d" % (digits, exp))
        point = rnd.randint(0, len(digits))
        texts.add((digits[:point] or "0") + "." + (digits[point:] or "0"))
    for e in range(-8, 22):
        for m in ("1", "9.999999999999999", "9.9999999999999999", "5", "1.5", "2.5"):
            texts.add("%se%d" % (m, e))
    for t in ("0.0001", "0.00009999", "999999999999999.9", "9999999999999998.0",
              "9007199254740993.0", "0.1", "0.2", "0.3", "100.0", "1e22", "1e23"):
        texts.add(t)
    return [{"input": t, "output": json.dumps(float(t))} for t in sorted(texts)]


def amounts():
    rnd = random.Random(7)
    vals = {0, 1, 9, 10, 11, 99, 100, 101, 150, 2550, 1000, 9999, 99999, 500000,
            10**15 - 1, 10**15, 10**15 + 1, 2**53 - 1, 2**53, 2**53 + 1,
            12345678901234567, 2**63 - 1}
    for _ in range(500):
        vals.add(rnd.randint(0, 10**rnd.randint(1, 18)))
    vals |= {-v for v in list(vals)[:50]}
    vals.add(-(2**63))
    return [{"minor": v, "output": json.dumps(v / 100)} for v in sorted(vals)]


RND = random.Random(42)


def rstr():
    pool = ['a','Z','0',' ','"','\\','/','<','>','&','\n','\t','\x01','\x1f','\x7f','\x80','é','中','😀','\u2028','\ufeff','\uffff']
    s = ''.join(RND.choice(pool) for _ in range(RND.randint(0,8)))
    return s
def rnum():
    c = RND.randint(0,7)
    if c == 0: return str(RND.randint(-10**30, 10**30))
    if c == 1: return repr(RND.uniform(-1e6,1e6))
    if c == 2: return '%de%d' % (RND.randint(-999,999), RND.randint(-330,330))
    if c == 3: return '%d.%0*d' % (RND.randint(0,99999), RND.randint(1,6), RND.randint(0,999999))
    if c == 4: return RND.choice(['-0','-0.0','0.0','1E5','1e16','1e-5','1.0','2.50','5e-324','1e400','-1e400'])
    if c == 5: return '%d.%de%+d' % (RND.randint(0,9), RND.randint(0,10**17), RND.randint(-30,30))
    return str(RND.randint(-1000,1000))
def rescape(s):
    # encode a python str into JSON text with random escaping choices
    out = ['"']
    for ch in s:
        o = ord(ch)
        r = RND.random()
        if ch == '"' : out.append(RND.choice(['\\"','\\u0022']))
        elif ch == '\\': out.append(RND.choice(['\\\\','\\u005C']))
        elif o < 0x20: out.append(RND.choice(['\\u%04x' % o, '\\u%04X' % o]) if ch not in '\n\t' or r<0.5 else ('\\n' if ch=='\n' else '\\t'))
        elif ch == '/' and r < 0.5: out.append('\\/')
        elif o > 0xffff and r < 0.5:
            v = o - 0x10000; out.append('\\u%04x\\u%04x' % (0xd800+(v>>10), 0xdc00+(v&0x3ff)))
        elif r < 0.2: 
            if o > 0xffff:
                v = o - 0x10000; out.append('\\u%04X\\u%04X' % (0xd800+(v>>10), 0xdc00+(v&0x3ff)))
            else: out.append('\\u%04x' % o)
        else: out.append(ch)
    if RND.random() < 0.05: out.append(RND.choice(['\\ud800','\\udc00','\\udbff\\udfff','\\ud83dx']))
    out.append('"')
    return ''.join(out)
def ws():
    return RND.choice(['','',' ','\n','\t ',' \r\n'])
def rval(d):
    c = RND.randint(0, 9 if d < 4 else 5)
    if c <= 2: return rescape(rstr())
    if c <= 4: return rnum()
    if c == 5: return RND.choice(['true','false','null','NaN','Infinity','-Infinity'])
    if c <= 7:
        n = RND.randint(0,6)
        keys = [rstr() for _ in range(n)]
        if n > 1 and RND.random() < 0.3: keys.append(keys[0])
        return '{' + ws() + (','+ws()).join(rescape(k)+ws()+':'+ws()+rval(d+1) for k in keys) + ws() + '}'
    n = RND.randint(0,5)
    return '[' + ws() + (','+ws()).join(rval(d+1) for _ in range(n)) + ws() + ']'

def random_cases(n=1000):
    """Random payloads, with random escaping, and mutated copies of them:
    Python decides which are valid and what their canonical form is."""
    out = []
    for _ in range(n):
        text = ws() + rval(0) + ws()
        out.append(text)
        mutated = text
        for _ in range(RND.randint(1, 3)):
            if not mutated:
                break
            k = RND.randrange(len(mutated))
            ch = RND.choice(['"', '\\', ',', ':', '{', '}', '[', ']', '0', '-', '.', 'e', 'u', 'x', ' ', '\x00', '\n', '\u00e9'])
            op = RND.randint(0, 2)
            if op == 0:
                mutated = mutated[:k] + mutated[k + 1:]
            elif op == 1:
                mutated = mutated[:k] + ch + mutated[k:]
            else:
                mutated = mutated[:k] + ch + mutated[k + 1:]
        out.append(mutated)
    rows = []
    for text in out:
        try:
            rows.append({"input": text, "output": canon(text)})
        except RecursionError:
            continue
        except ValueError:
            rows.append({"input": text, "error": True})
    return rows


def write(name, obj):
    with open(name, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    write("cases.json", cases())
    write("floats.json", floats())
    write("amounts.json", amounts())
    write("random.json", random_cases())
