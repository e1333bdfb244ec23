//! Finding the server name (SNI, RFC 6066) in a TLS ClientHello record
//! (RFC 8446 section 4.1.2; the layout is the same since TLS 1.0). The bytes
//! come from a task's buffer, so every length is checked against what is
//! there: a garbled or cut hello is an error or None, never a panic.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HelloError {
    #[error("not a TLS handshake record holding a ClientHello")]
    NotClientHello,
    #[error("the {0} runs past the captured bytes")]
    Truncated(&'static str),
}

/// Reads big-endian fields and length-prefixed blocks, checking bounds.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        let end =
            self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(HelloError::Truncated(what))?;
        let b = &self.bytes[self.at..end];
        self.at = end;
        Ok(b)
    }

    fn number(&mut self, width: usize, what: &'static str) -> Result<usize, HelloError> {
        Ok(self.take(width, what)?.iter().fold(0usize, |n, &b| n << 8 | usize::from(b)))
    }

    /// A block preceded by its length on `width` bytes.
    fn block(&mut self, width: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        let n = self.number(width, what)?;
        self.take(n, what)
    }
}

const EXT_SERVER_NAME: usize = 0;
const NAME_TYPE_HOST: u8 = 0;

/// The host name the client asks for, or None when the hello has none.
pub fn server_name(record: &[u8]) -> Result<Option<String>, HelloError> {
    let mut r = Reader { bytes: record, at: 0 };
    let header = r.take(5, "record header")?;
    if header[0] != 0x16 || header[1] != 0x03 || r.take(1, "handshake type")?[0] != 0x01 {
        return Err(HelloError::NotClientHello);
    }
    r.take(3, "handshake length")?;
    r.take(2 + 32, "version and random")?;
    r.block(1, "session id")?;
    r.block(2, "cipher suites")?;
    r.block(1, "compression methods")?;
    if r.at == record.len() {
        return Ok(None); // a hello without extensions (TLS 1.0 era)
    }
    let mut exts = Reader { bytes: r.block(2, "extensions")?, at: 0 };
    while exts.at < exts.bytes.len() {
        let kind = exts.number(2, "extension type")?;
        let data = exts.block(2, "extension")?;
        if kind != EXT_SERVER_NAME {
            continue;
        }
        let mut list = Reader { bytes: data, at: 0 };
        let mut names = Reader { bytes: list.block(2, "server name list")?, at: 0 };
        while names.at < names.bytes.len() {
            let name_type = names.take(1, "server name type")?[0];
            let name = names.block(2, "server name")?;
            if name_type == NAME_TYPE_HOST {
                return Ok(Some(String::from_utf8_lossy(name).into_owned()));
            }
        }
        return Ok(None);
    }
    Ok(None)
}

/// `body` preceded by its length on `width` bytes.
fn with_len(width: usize, body: &[u8]) -> Vec<u8> {
    let mut v = body.len().to_be_bytes()[8 - width..].to_vec();
    v.extend_from_slice(body);
    v
}

/// A ClientHello record with the given extensions (type, data): what the
/// tests and the kernel matrix send to provoke `trace sni`.
pub fn hello(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7; 32]);
    body.extend(with_len(1, &[1, 2, 3]));
    body.extend(with_len(2, &[0x13, 0x01, 0x13, 0x02]));
    body.extend(with_len(1, &[0]));
    let mut ext_bytes = Vec::new();
    for (kind, data) in exts {
        ext_bytes.extend_from_slice(&kind.to_be_bytes());
        ext_bytes.extend(with_len(2, data));
    }
    body.extend(with_len(2, &ext_bytes));
    let mut hs = vec![0x01];
    hs.extend(with_len(3, &body));
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend(with_len(2, &hs));
    rec
}

/// The server_name extension naming `name`.
pub fn sni(name: &str) -> (u16, Vec<u8>) {
    let mut entry = vec![NAME_TYPE_HOST];
    entry.extend(with_len(2, name.as_bytes()));
    (EXT_SERVER_NAME as u16, with_len(2, &entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_name_after_other_extensions() {
        let rec = hello(&[(10, vec![0, 2, 0, 29]), (51, vec![9; 1300]), sni("api.example.test")]);
        assert_eq!(server_name(&rec), Ok(Some("api.example.test".into())));
    }

    #[test]
    fn a_hello_without_server_name() {
        assert_eq!(server_name(&hello(&[(10, vec![0, 2, 0, 29])])), Ok(None));
    }

    #[test]
    fn cut_and_foreign_records() {
        let rec = hello(&[(51, vec![9; 100]), sni("late.example.test")]);
        assert_eq!(server_name(&rec[..rec.len() - 4]), Err(HelloError::Truncated("extensions")));
        assert_eq!(server_name(&rec[..20]), Err(HelloError::Truncated("version and random")));
        let mut server_hello = rec.clone();
        server_hello[5] = 0x02;
        assert_eq!(server_name(&server_hello), Err(HelloError::NotClientHello));
        assert_eq!(server_name(b"GET / HTTP/1.1\r\n"), Err(HelloError::NotClientHello));
    }
}
