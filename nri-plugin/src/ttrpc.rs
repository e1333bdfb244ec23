//! ttrpc framing: `DataLength u32 BE | StreamID u32 BE | Type u8 | Flags u8 |
//! Data`, Data being a protobuf Request or Response. Unary calls only.

pub const HEADER: usize = 10;
/// ttrpc's own message limit.
pub const MAX_DATA: usize = 4 << 20;
pub const TYPE_REQUEST: u8 = 1;
pub const TYPE_RESPONSE: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub stream_id: u32,
    pub kind: u8,
    pub flags: u8,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TtrpcError {
    #[error("ttrpc message of {0} bytes is longer than {MAX_DATA}")]
    TooLong(usize),
}

/// Parses ttrpc messages from one logical connection's byte stream.
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Message>, TtrpcError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut at = 0;
        while self.buf.len() - at >= HEADER {
            let h = &self.buf[at..at + HEADER];
            let len = u32::from_be_bytes(h[0..4].try_into().expect("4 bytes")) as usize;
            if len > MAX_DATA {
                return Err(TtrpcError::TooLong(len));
            }
            if self.buf.len() - at - HEADER < len {
                break;
            }
            out.push(Message {
                stream_id: u32::from_be_bytes(h[4..8].try_into().expect("4 bytes")),
                kind: h[8],
                flags: h[9],
                data: self.buf[at + HEADER..at + HEADER + len].to_vec(),
            });
            at += HEADER + len;
        }
        self.buf.drain(..at);
        Ok(out)
    }
}

pub fn encode(stream_id: u32, kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + data.len());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_byte_by_byte() {
        let wire = [encode(1, TYPE_REQUEST, b"abc"), encode(3, TYPE_RESPONSE, b"")].concat();
        let mut p = Parser::default();
        let mut got = Vec::new();
        for b in &wire {
            got.extend(p.feed(&[*b]).unwrap());
        }
        assert_eq!(got[0], Message { stream_id: 1, kind: TYPE_REQUEST, flags: 0, data: b"abc".to_vec() });
        assert_eq!(got[1], Message { stream_id: 3, kind: TYPE_RESPONSE, flags: 0, data: vec![] });
    }

    #[test]
    fn oversized_messages_are_refused() {
        let mut p = Parser::default();
        assert_eq!(
            p.feed(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1, 0]),
            Err(TtrpcError::TooLong(0xffff_ffff))
        );
    }
}
