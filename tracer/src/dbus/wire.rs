//! The D-Bus wire format, as far as ig speaks it to systemd: values,
//! their signatures, marshalling (little-endian) and unmarshalling (either
//! byte order), and the message header. The rules are the D-Bus
//! specification's: each value is aligned to its type's size (structs and
//! dict entries to 8) counted from the start of the message, strings carry
//! a u32 length and a NUL, arrays a u32 byte length after which their
//! first element is aligned.

use thiserror::Error;

/// Deeper nesting than this is refused: a reply cannot make ig recurse
/// without bound (the specification's own limit is 32 arrays + 32 structs).
const MAX_DEPTH: usize = 64;
/// Replies from systemd to ig's calls are small; a larger frame is refused
/// before it is read (the specification allows 128 MiB).
pub const MAX_MESSAGE: usize = 1 << 20;

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;

const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SIGNATURE: u8 = 8;
const FIELD_UNIX_FDS: u8 = 9;

#[derive(Debug, Error, PartialEq)]
pub enum WireError {
    #[error("D-Bus message truncated at byte {0}")]
    Truncated(usize),
    #[error("D-Bus signature {0:?} is not valid")]
    Signature(String),
    #[error("D-Bus string at byte {0} is not UTF-8 or lacks its NUL")]
    BadString(usize),
    #[error("D-Bus value nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("D-Bus message of {0} bytes is larger than ig accepts ({MAX_MESSAGE})")]
    TooLarge(usize),
    #[error("D-Bus message starts with byte order {0:#04x}, neither 'l' nor 'B'")]
    ByteOrder(u8),
}

/// One D-Bus value. A file descriptor is its index into the message's
/// passed descriptors; an array carries its element signature, so an
/// empty one still has a type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    Path(String),
    Sig(String),
    Fd(u32),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    /// A `{kv}` pair, only inside an array.
    Entry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }

    pub fn variant(v: Value) -> Self {
        Value::Variant(Box::new(v))
    }

    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Double(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Fd(_) => "h".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => format!("({})", fields.iter().map(Value::signature).collect::<String>()),
            Value::Entry(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
            Value::Variant(_) => "v".into(),
        }
    }

    /// The string inside a string, object path or signature, or a variant of one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            Value::Variant(v) => v.as_str(),
            _ => None,
        }
    }

    /// An integer of any width, or a variant of one.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Byte(n) => Some(n.into()),
            Value::I16(n) => Some(n.into()),
            Value::U16(n) => Some(n.into()),
            Value::I32(n) => Some(n.into()),
            Value::U32(n) => Some(n.into()),
            Value::I64(n) => Some(n),
            Value::U64(n) => i64::try_from(n).ok(),
            Value::Variant(ref v) => v.as_i64(),
            _ => None,
        }
    }
}

/// The alignment of a complete type's first byte.
fn alignment(sig: &str) -> usize {
    match sig.as_bytes().first() {
        Some(b'y' | b'g' | b'v') => 1,
        Some(b'n' | b'q') => 2,
        Some(b'x' | b't' | b'd' | b'(' | b'{') => 8,
        _ => 4,
    }
}

/// Splits the first complete type off a signature.
fn split_type(sig: &str) -> Result<(&str, &str), WireError> {
    let bad = || WireError::Signature(sig.to_string());
    let bytes = sig.as_bytes();
    let end = match bytes.first().ok_or_else(bad)? {
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o' | b'g' | b'h' | b'v' => 1,
        b'a' => 1 + split_type(&sig[1..]).map_err(|_| bad())?.0.len(),
        open @ (b'(' | b'{') => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut rest = &sig[1..];
            let mut len = 1;
            loop {
                if rest.as_bytes().first() == Some(&close) {
                    // The specification forbids an empty struct: an array
                    // of them would hold any count of elements in no bytes.
                    if len == 1 {
                        return Err(bad());
                    }
                    break len + 1;
                }
                let (one, after) = split_type(rest).map_err(|_| bad())?;
                len += one.len();
                rest = after;
            }
        }
        _ => return Err(bad()),
    };
    Ok(sig.split_at(end))
}

/// Marshals values into a message buffer; offsets (and so alignment)
/// count from the buffer's start, which must be the message's start or an
/// 8-aligned offset into it.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn align(&mut self, n: usize) {
        while !self.buf.len().is_multiple_of(n) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, n: u32) {
        self.align(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(n) => self.buf.push(*n),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(n) => self.fixed(2, &n.to_le_bytes()),
            Value::U16(n) => self.fixed(2, &n.to_le_bytes()),
            Value::I32(n) => self.fixed(4, &n.to_le_bytes()),
            Value::U32(n) | Value::Fd(n) => self.u32(*n),
            Value::I64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::U64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::Double(n) => self.fixed(8, &n.to_le_bytes()),
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.align(alignment(elem));
                let start = self.buf.len();
                for item in items {
                    self.put(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.align(8);
                for f in fields {
                    self.put(f);
                }
            }
            Value::Entry(k, v) => {
                self.align(8);
                self.put(k);
                self.put(v);
            }
            Value::Variant(inner) => {
                self.put(&Value::Sig(inner.signature()));
                self.put(inner);
            }
        }
    }

    fn fixed(&mut self, align: usize, bytes: &[u8]) {
        self.align(align);
        self.buf.extend_from_slice(bytes);
    }
}

/// Reads values out of a whole message (offsets from its start).
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], pos: usize, big_endian: bool) -> Self {
        Reader { buf, pos, big_endian }
    }

    fn align(&mut self, n: usize) -> Result<(), WireError> {
        let to = self.pos.next_multiple_of(n);
        if to > self.buf.len() {
            return Err(WireError::Truncated(self.pos));
        }
        self.pos = to;
        Ok(())
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.align(N)?;
        let bytes = self.buf.get(self.pos..self.pos + N).ok_or(WireError::Truncated(self.pos))?;
        self.pos += N;
        let mut out: [u8; N] = bytes.try_into().expect("N bytes");
        if self.big_endian {
            out.reverse();
        }
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        self.take::<4>().map(u32::from_le_bytes)
    }

    fn text(&mut self, len: usize) -> Result<String, WireError> {
        let at = self.pos;
        let bytes = self.buf.get(at..at + len + 1).ok_or(WireError::Truncated(at))?;
        if bytes[len] != 0 {
            return Err(WireError::BadString(at));
        }
        let s = std::str::from_utf8(&bytes[..len]).map_err(|_| WireError::BadString(at))?;
        self.pos += len + 1;
        Ok(s.to_string())
    }

    /// Reads every value of `sig` in order.
    pub fn read_all(&mut self, mut sig: &str) -> Result<Vec<Value>, WireError> {
        let mut out = Vec::new();
        while !sig.is_empty() {
            let (one, rest) = split_type(sig)?;
            out.push(self.read(one, 0)?);
            sig = rest;
        }
        Ok(out)
    }

    fn read(&mut self, ty: &str, depth: usize) -> Result<Value, WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::TooDeep);
        }
        let first = ty.as_bytes()[0];
        Ok(match first {
            b'y' => {
                let b = *self.buf.get(self.pos).ok_or(WireError::Truncated(self.pos))?;
                self.pos += 1;
                Value::Byte(b)
            }
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' => Value::I16(i16::from_le_bytes(self.take()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.take()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.take()?)),
            b'u' => Value::U32(self.u32()?),
            b'h' => Value::Fd(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.take()?)),
            b't' => Value::U64(u64::from_le_bytes(self.take()?)),
            b'd' => Value::Double(f64::from_le_bytes(self.take()?)),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if first == b's' { Value::Str(s) } else { Value::Path(s) }
            }
            b'g' => Value::Sig(self.signature()?),
            b'v' => {
                let sig = self.signature()?;
                let (one, rest) = split_type(&sig)?;
                if !rest.is_empty() {
                    return Err(WireError::Signature(sig));
                }
                Value::Variant(Box::new(self.read(one, depth + 1)?))
            }
            b'a' => {
                let elem = &ty[1..];
                let len = self.u32()? as usize;
                self.align(alignment(elem))?;
                let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
                let end = end.ok_or(WireError::Truncated(self.pos))?;
                let mut items = Vec::new();
                while self.pos < end {
                    let at = self.pos;
                    items.push(self.read(elem, depth + 1)?);
                    // Every element takes bytes; one that took none would repeat forever.
                    if self.pos == at {
                        return Err(WireError::Signature(ty.to_string()));
                    }
                }
                if self.pos != end {
                    return Err(WireError::Truncated(end));
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let mut fields = Vec::new();
                let mut inner = &ty[1..ty.len() - 1];
                while !inner.is_empty() {
                    let (one, rest) = split_type(inner)?;
                    fields.push(self.read(one, depth + 1)?);
                    inner = rest;
                }
                if first == b'{' {
                    let [k, v]: [Value; 2] =
                        fields.try_into().map_err(|_| WireError::Signature(ty.to_string()))?;
                    Value::Entry(Box::new(k), Box::new(v))
                } else {
                    Value::Struct(fields)
                }
            }
            _ => return Err(WireError::Signature(ty.to_string())),
        })
    }

    fn signature(&mut self) -> Result<String, WireError> {
        let len = *self.buf.get(self.pos).ok_or(WireError::Truncated(self.pos))? as usize;
        self.pos += 1;
        self.text(len)
    }
}

/// A method call to marshal.
pub struct Call<'a> {
    pub serial: u32,
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: Option<&'a str>,
    pub member: &'a str,
    pub body: &'a [Value],
    /// How many file descriptors travel with it (the body's `h` values index them).
    pub fds: u32,
}

impl Call<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Writer::default();
        for v in self.body {
            body.put(v);
        }
        let sig: String = self.body.iter().map(Value::signature).collect();
        let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::variant(v)]);
        let mut fields = vec![field(FIELD_PATH, Value::Path(self.path.into()))];
        if let Some(i) = self.interface {
            fields.push(field(FIELD_INTERFACE, Value::str(i)));
        }
        fields.push(field(FIELD_MEMBER, Value::str(self.member)));
        if let Some(d) = self.destination {
            fields.push(field(FIELD_DESTINATION, Value::str(d)));
        }
        if !sig.is_empty() {
            fields.push(field(FIELD_SIGNATURE, Value::Sig(sig)));
        }
        if self.fds > 0 {
            fields.push(field(FIELD_UNIX_FDS, Value::U32(self.fds)));
        }
        let mut msg = Writer::default();
        msg.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
        msg.u32(body.buf.len() as u32);
        msg.u32(self.serial);
        msg.put(&Value::Array("(yv)".into(), fields));
        msg.align(8);
        msg.buf.extend_from_slice(&body.buf);
        msg.buf
    }
}

/// A received message, as far as a caller waiting for a reply needs it.
#[derive(Debug)]
pub struct Message {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub error_name: Option<String>,
    pub body: Vec<Value>,
}

/// The whole length of the message whose first 16 bytes these are.
pub fn frame_len(head: &[u8; 16]) -> Result<usize, WireError> {
    let big = match head[0] {
        b'l' => false,
        b'B' => true,
        other => return Err(WireError::ByteOrder(other)),
    };
    let word = |at: usize| {
        let b: [u8; 4] = head[at..at + 4].try_into().expect("4 bytes");
        if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    };
    let (body, fields) = (word(4) as usize, word(12) as usize);
    let total = (16 + fields).next_multiple_of(8) + body;
    if total > MAX_MESSAGE {
        return Err(WireError::TooLarge(total));
    }
    Ok(total)
}

/// Parses one whole message (as long as `frame_len` said).
pub fn parse(msg: &[u8]) -> Result<Message, WireError> {
    let head: &[u8; 16] = msg.get(..16).and_then(|h| h.try_into().ok()).ok_or(WireError::Truncated(0))?;
    if frame_len(head)? != msg.len() {
        return Err(WireError::Truncated(msg.len()));
    }
    let mut r = Reader::new(msg, 12, head[0] == b'B');
    let Value::Array(_, fields) = r.read("a(yv)", 0)? else { unreachable!("an array was read") };
    let (mut reply_serial, mut error_name, mut sig) = (None, None, String::new());
    for f in fields {
        let Value::Struct(kv) = f else { continue };
        match (kv.first(), kv.get(1)) {
            (Some(Value::Byte(FIELD_REPLY_SERIAL)), Some(v)) => {
                reply_serial = v.as_i64().and_then(|n| u32::try_from(n).ok())
            }
            (Some(Value::Byte(FIELD_ERROR_NAME)), Some(v)) => error_name = v.as_str().map(str::to_string),
            (Some(Value::Byte(FIELD_SIGNATURE)), Some(v)) => sig = v.as_str().unwrap_or_default().to_string(),
            _ => {}
        }
    }
    r.align(8)?;
    let body = r.read_all(&sig)?;
    Ok(Message { kind: head[1], reply_serial, error_name, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(sig: &str, v: Value) {
        assert_eq!(v.signature(), sig);
        let mut w = Writer::default();
        w.put(&v);
        let back = Reader::new(&w.buf, 0, false).read_all(sig).unwrap();
        assert_eq!(back, vec![v]);
    }

    #[test]
    fn values_round_trip_through_their_signatures() {
        round_trip("s", Value::str("systemd"));
        round_trip("o", Value::Path("/org/freedesktop/systemd1".into()));
        round_trip("i", Value::I32(-3));
        round_trip("t", Value::U64(u64::MAX));
        round_trip("as", Value::Array("s".into(), vec![Value::str("a"), Value::str("bc")]));
        round_trip("a(sv)", Value::Array("(sv)".into(), vec![]));
        round_trip(
            "a(sasb)",
            Value::Array(
                "(sasb)".into(),
                vec![Value::Struct(vec![
                    Value::str("/bin/ig"),
                    Value::Array("s".into(), vec![Value::str("ig")]),
                    Value::Bool(false),
                ])],
            ),
        );
        round_trip("v", Value::variant(Value::Array("x".into(), vec![Value::I64(1), Value::I64(-2)])));
        round_trip(
            "a{sv}",
            Value::Array(
                "{sv}".into(),
                vec![Value::Entry(Box::new(Value::str("k")), Box::new(Value::variant(Value::Fd(2))))],
            ),
        );
    }

    #[test]
    fn marshalling_aligns_as_the_specification_says() {
        // A byte, then a u32 aligned to 4, then a struct aligned to 8 whose
        // string is a u32 length, the bytes and a NUL.
        let mut w = Writer::default();
        w.put(&Value::Byte(7));
        w.put(&Value::U32(1));
        w.put(&Value::Struct(vec![Value::str("ab")]));
        assert_eq!(w.buf, [7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', 0]);
        // An empty array of structs still pads to its element's alignment,
        // and its length does not count that padding.
        let mut w = Writer::default();
        w.put(&Value::Array("(sv)".into(), vec![]));
        assert_eq!(w.buf, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_call_parses_back_with_its_body_and_fields() {
        let body = [Value::str("ig-1.service"), Value::str("fail")];
        let call = Call {
            serial: 9,
            destination: Some("org.freedesktop.systemd1"),
            path: "/org/freedesktop/systemd1",
            interface: Some("org.freedesktop.systemd1.Manager"),
            member: "StopUnit",
            body: &body,
            fds: 0,
        };
        let bytes = call.encode();
        let head: [u8; 16] = bytes[..16].try_into().unwrap();
        assert_eq!(frame_len(&head).unwrap(), bytes.len());
        let msg = parse(&bytes).unwrap();
        assert_eq!(msg.kind, METHOD_CALL);
        assert_eq!(msg.body, body);
    }

    #[test]
    fn a_big_endian_reply_is_read() {
        // METHOD_RETURN, reply to serial 5, body "o" = "/a".
        let mut m = vec![b'B', METHOD_RETURN, 0, 1, 0, 0, 0, 7, 0, 0, 0, 1];
        let fields: &[u8] = &[
            0,
            0,
            0,
            15, // array length: two fields, the second 8-aligned
            FIELD_REPLY_SERIAL,
            1,
            b'u',
            0,
            0,
            0,
            0,
            5, // (y v=u 5)
            FIELD_SIGNATURE,
            1,
            b'g',
            0,
            1,
            b'o',
            0, // (y v=g "o")
        ];
        m.extend_from_slice(fields);
        while m.len() % 8 != 0 {
            m.push(0);
        }
        m.extend_from_slice(&[0, 0, 0, 2, b'/', b'a', 0]);
        let msg = parse(&m).unwrap();
        assert_eq!(msg.reply_serial, Some(5));
        assert_eq!(msg.body, vec![Value::Path("/a".into())]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(parse(b"x"), Err(WireError::Truncated(0))));
        let mut bytes = Call {
            serial: 1,
            destination: None,
            path: "/",
            interface: None,
            member: "Get",
            body: &[Value::str("x")],
            fds: 0,
        }
        .encode();
        let n = bytes.len();
        bytes[n - 2] = 0xff; // not UTF-8
        assert!(parse(&bytes).is_err());
        for cut in 0..n {
            let _ = parse(&bytes[..cut]);
        }
        assert!(split_type("a").is_err());
        assert!(split_type("()").is_err() && split_type("a()").is_err(), "no empty struct");
        // Found by the fuzzer: a body of signature "(a()()v)" whose array of
        // empty structs never advanced and grew until memory ran out.
        let found: &[u8] = &[
            0x6c, 0x02, 0x00, 0x01, 0x0e, 0x00, 0x00, 0x00, 0x08, 0xfe, 0x00, 0x0c, 0x09, 0x00, 0x00, 0x00,
            0x00, 0x08, 0x28, 0x61, 0x28, 0x29, 0x28, 0x29, 0x76, 0x29, 0x00, 0x00, 0x01, 0x69, 0x00, 0x00,
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x55, 0x65, 0x0c,
        ];
        assert!(parse(found).is_err());
        assert!(split_type("(s").is_err());
        assert_eq!(split_type("a(sv)s").unwrap(), ("a(sv)", "s"));
        let mut deep = Value::Byte(1);
        for _ in 0..100 {
            deep = Value::Array(deep.signature(), vec![deep]);
        }
        let mut w = Writer::default();
        w.put(&deep);
        let read = Reader::new(&w.buf, 0, false).read_all(&deep.signature());
        assert_eq!(read, Err(WireError::TooDeep));
        let head = [b'l', 2, 0, 1, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(frame_len(&head), Err(WireError::TooLarge(_))));
    }

    #[test]
    fn the_fuzz_seeds_are_replies_as_systemd_sends_them() {
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/dbus_message");
        let read = |name: &str| parse(&std::fs::read(format!("{seeds}/{name}")).unwrap()).unwrap();
        let unit = read("get-unit");
        assert_eq!((unit.kind, unit.reply_serial), (METHOD_RETURN, Some(2)));
        assert_eq!(unit.body, [Value::Path("/org/freedesktop/systemd1/unit/ig_2eservice".into())]);
        assert_eq!(read("active-state").body[0].as_str(), Some("active"));
        assert_eq!(read("exec-main-status").body[0].as_i64(), Some(3));
        let err = read("error");
        assert_eq!(err.kind, ERROR);
        assert_eq!(err.error_name.as_deref(), Some("org.freedesktop.systemd1.NoSuchUnit"));
        assert_eq!(err.body[0].as_str(), Some("Unit ig.service not loaded."));
    }
}
