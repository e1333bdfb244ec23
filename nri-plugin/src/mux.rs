//! NRI's multiplexer: two logical connections over one unix socket. Every
//! frame is `ConnID u32 BE | Length u32 BE | payload`; conn 1 carries the
//! Plugin service (containerd is the client), conn 2 the Runtime service
//! (we are the client). A frame boundary is not a message boundary: payloads
//! are concatenated per connection and ttrpc messages parsed from that.

use std::io::Write;

pub const PLUGIN_CONN: u32 = 1;
pub const RUNTIME_CONN: u32 = 2;
/// containerd refuses larger payloads; a longer frame is garbage.
pub const MAX_FRAME: usize = 1 << 24;
/// Frames towards containerd stay within what its 4096-byte buffered reader
/// always accepts.
pub const SAFE_CHUNK: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MuxError {
    #[error("mux frame for connection {conn} of {len} bytes is longer than {MAX_FRAME}")]
    TooLong { conn: u32, len: usize },
    #[error("mux frame for unknown connection {0}")]
    UnknownConn(u32),
}

/// Splits the socket's byte stream into (connection, payload) pieces.
#[derive(Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Adds bytes read from the socket; returns every complete frame.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, MuxError> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.buf.len() - at >= 8 {
            let conn = u32::from_be_bytes(self.buf[at..at + 4].try_into().expect("4 bytes"));
            let len = u32::from_be_bytes(self.buf[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
            if len > MAX_FRAME {
                return Err(MuxError::TooLong { conn, len });
            }
            if conn != PLUGIN_CONN && conn != RUNTIME_CONN {
                return Err(MuxError::UnknownConn(conn));
            }
            if self.buf.len() - at - 8 < len {
                break;
            }
            frames.push((conn, self.buf[at + 8..at + 8 + len].to_vec()));
            at += 8 + len;
        }
        self.buf.drain(..at);
        Ok(frames)
    }

    /// Bytes of an unfinished frame still buffered.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Writes `payload` to connection `conn`, in frames of at most [`SAFE_CHUNK`]
/// bytes, all in one buffer so that one write_all keeps them together.
pub fn write_frames(w: &mut impl Write, conn: u32, payload: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(payload.len() + 8 * (payload.len() / SAFE_CHUNK + 1));
    for chunk in payload.chunks(SAFE_CHUNK) {
        out.extend_from_slice(&conn.to_be_bytes());
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    w.write_all(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_are_reassembled() {
        let mut wire = Vec::new();
        write_frames(&mut wire, PLUGIN_CONN, b"hello").unwrap();
        write_frames(&mut wire, RUNTIME_CONN, b"world!").unwrap();
        for split in 0..wire.len() {
            let mut d = Demux::default();
            let mut got = d.feed(&wire[..split]).unwrap();
            got.extend(d.feed(&wire[split..]).unwrap());
            assert_eq!(got, vec![(1, b"hello".to_vec()), (2, b"world!".to_vec())], "split at {split}");
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn large_payloads_go_out_in_safe_chunks() {
        let payload = vec![7u8; 10_000];
        let mut wire = Vec::new();
        write_frames(&mut wire, RUNTIME_CONN, &payload).unwrap();
        let frames = Demux::default().feed(&wire).unwrap();
        assert_eq!(frames.iter().map(|f| f.1.len()).collect::<Vec<_>>(), vec![4096, 4096, 1808]);
        assert_eq!(frames.concat_payloads(), payload);
    }

    trait Concat {
        fn concat_payloads(&self) -> Vec<u8>;
    }
    impl Concat for Vec<(u32, Vec<u8>)> {
        fn concat_payloads(&self) -> Vec<u8> {
            self.iter().flat_map(|f| f.1.clone()).collect()
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = Demux::default();
        assert_eq!(
            d.feed(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]),
            Err(MuxError::TooLong { conn: 1, len: 0xffff_ffff })
        );
        let mut d = Demux::default();
        assert_eq!(d.feed(&[0, 0, 0, 9, 0, 0, 0, 0]), Err(MuxError::UnknownConn(9)));
        // a truncated frame just waits for more
        let mut d = Demux::default();
        assert_eq!(d.feed(&[0, 0, 0, 1, 0, 0, 0, 5, 1, 2]), Ok(vec![]));
        assert_eq!(d.pending(), 10);
    }
}
