//! Reading fields out of the bytes a program wrote to the ring buffer.
//! Offsets come from the bindgen-generated structs (`offset_of!`), so the C
//! header stays the only definition of the layout. Events are shorter than
//! their struct when their trailing strings are (only used bytes are sent).

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event of {len} bytes is shorter than its {need}-byte header")]
    Short { len: usize, need: usize },
    /// The event is whole but what it carries (e.g. a packet) is not valid.
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
}

pub struct Raw<'a>(pub &'a [u8]);

impl<'a> Raw<'a> {
    /// Checks that at least the fixed header (up to `header_len`) is there.
    pub fn new(bytes: &'a [u8], header_len: usize) -> Result<Self, DecodeError> {
        if bytes.len() < header_len {
            return Err(DecodeError::Short { len: bytes.len(), need: header_len });
        }
        Ok(Self(bytes))
    }

    pub fn u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().expect("4 bytes"))
    }

    pub fn i32(&self, off: usize) -> i32 {
        i32::from_ne_bytes(self.0[off..off + 4].try_into().expect("4 bytes"))
    }

    pub fn u64(&self, off: usize) -> u64 {
        u64::from_ne_bytes(self.0[off..off + 8].try_into().expect("8 bytes"))
    }

    pub fn i64(&self, off: usize) -> i64 {
        i64::from_ne_bytes(self.0[off..off + 8].try_into().expect("8 bytes"))
    }

    /// `len` bytes at `off`, cut to what the event holds.
    pub fn bytes(&self, off: usize, len: usize) -> &'a [u8] {
        let start = off.min(self.0.len());
        let end = off.saturating_add(len).min(self.0.len());
        &self.0[start..end]
    }

    /// A NUL-terminated string of at most `max` bytes at `off`, as text.
    pub fn cstr(&self, off: usize, max: usize) -> String {
        let b = self.bytes(off, max);
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    }
}

/// An IP address as the kernel stores it (16 bytes; IPv4 in the first 4).
pub fn ip_string(bytes: &[u8], v6: bool) -> String {
    let mut b = [0u8; 16];
    let n = bytes.len().min(16);
    b[..n].copy_from_slice(&bytes[..n]);
    if v6 {
        std::net::Ipv6Addr::from(b).to_string()
    } else {
        std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
    }
}

/// `addr:port`, with IPv6 addresses in brackets.
pub fn endpoint(addr: &str, port: u16, v6: bool) -> String {
    if v6 { format!("[{addr}]:{port}") } else { format!("{addr}:{port}") }
}

impl Raw<'_> {
    pub fn u8(&self, off: usize) -> u8 {
        self.0[off]
    }

    pub fn u16(&self, off: usize) -> u16 {
        u16::from_ne_bytes(self.0[off..off + 2].try_into().expect("2 bytes"))
    }
}

/// Splits a NUL-separated argument block (as in /proc/pid/cmdline).
pub fn split_args(block: &[u8]) -> Vec<String> {
    let block = block.strip_suffix(&[0]).unwrap_or(block);
    if block.is_empty() {
        return Vec::new();
    }
    block.split(|&c| c == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_args_and_drops_the_final_nul() {
        assert_eq!(split_args(b"/bin/ls\0-l\0\0x\0"), vec!["/bin/ls", "-l", "", "x"]);
        assert_eq!(split_args(b""), Vec::<String>::new());
        assert_eq!(split_args(b"cut-without-nul"), vec!["cut-without-nul"]);
    }

    #[test]
    fn formats_addresses() {
        assert_eq!(ip_string(&[127, 0, 0, 1, 9, 9], false), "127.0.0.1");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_string(&v6, true), "::1");
        assert_eq!(endpoint("::1", 80, true), "[::1]:80");
        assert_eq!(endpoint("10.0.0.1", 53, false), "10.0.0.1:53");
    }

    #[test]
    fn short_events_are_refused_and_strings_are_bounded() {
        assert!(Raw::new(&[0u8; 3], 8).is_err());
        let raw = Raw::new(b"abc\0def", 0).unwrap();
        assert_eq!(raw.cstr(0, 16), "abc");
        assert_eq!(raw.cstr(4, 16), "def");
        assert_eq!(raw.cstr(10, 16), "");
    }
}
