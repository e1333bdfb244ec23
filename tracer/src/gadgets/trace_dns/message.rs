//! Reading a DNS message (RFC 1035 section 4) as `trace dns` shows it: the
//! header, the first question, and the A/AAAA addresses of the answers.
//! Messages come from the network, so every length and compression pointer
//! is checked: a garbled one is an error, never a panic or a loop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const HEADER_LEN: usize = 12;
/// A name is at most 255 bytes; this many pointer jumps cannot be honest.
const MAX_JUMPS: usize = 32;
const MAX_NAME_LEN: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    #[error("shorter than a DNS header ({0} bytes)")]
    ShortHeader(usize),
    #[error("the question runs past the end of the message")]
    Truncated,
    #[error("a compression pointer loops or points forward")]
    BadPointer,
    #[error("a name is longer than 255 bytes")]
    LongName,
    #[error("reserved label type 0x{0:02x}")]
    BadLabel(u8),
}

/// What `trace dns` shows of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    /// QR bit: a response.
    pub response: bool,
    pub rcode: u8,
    /// ANCOUNT from the header: answers the message says it carries.
    pub answer_count: u16,
    /// The first question's name in presentation form ("example.com."); empty
    /// when the message has no question.
    pub name: String,
    pub qtype: u16,
    /// A and AAAA answers that fit in the captured bytes.
    pub addresses: Vec<IpAddr>,
}

pub fn parse(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::ShortHeader(msg.len()));
    }
    let be16 = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let flags = be16(2);
    let mut out = DnsMessage {
        id: be16(0),
        response: flags & 0x8000 != 0,
        rcode: (flags & 0x000f) as u8,
        answer_count: be16(6),
        ..Default::default()
    };
    let questions = be16(4);
    let mut at = HEADER_LEN;
    for i in 0..questions {
        let (name, next) = read_name(msg, at)?;
        if next + 4 > msg.len() {
            return Err(DnsError::Truncated);
        }
        if i == 0 {
            out.name = name;
            out.qtype = u16::from_be_bytes([msg[next], msg[next + 1]]);
        }
        at = next + 4;
    }
    // Answers: a message cut by the capture limit keeps the ones that fit.
    for _ in 0..out.answer_count {
        let Ok((_, next)) = read_name(msg, at) else { break };
        if next + 10 > msg.len() {
            break;
        }
        let rtype = u16::from_be_bytes([msg[next], msg[next + 1]]);
        let rdlen = usize::from(u16::from_be_bytes([msg[next + 8], msg[next + 9]]));
        let rdata = next + 10;
        let Some(data) = msg.get(rdata..rdata + rdlen) else { break };
        match (rtype, data.len()) {
            (1, 4) => out.addresses.push(IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]))),
            (28, 16) => {
                let octets: [u8; 16] = data.try_into().expect("16 bytes");
                out.addresses.push(IpAddr::V6(Ipv6Addr::from(octets)));
            }
            _ => {}
        }
        at = rdata + rdlen;
    }
    Ok(out)
}

/// Reads the name at `at`; returns it and the offset just after it (after the
/// first pointer when it is compressed).
fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut wire_len = 0usize;
    let mut at = start;
    let mut after: Option<usize> = None;
    let mut jumps = 0;
    loop {
        let &len = msg.get(at).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let next = after.unwrap_or(at + 1);
                if name.is_empty() {
                    name.push('.');
                }
                return Ok((name, next));
            }
            0x00 => {
                let label = msg.get(at + 1..at + 1 + usize::from(len)).ok_or(DnsError::Truncated)?;
                wire_len += label.len() + 1;
                if wire_len > MAX_NAME_LEN {
                    return Err(DnsError::LongName);
                }
                push_label(&mut name, label);
                at += 1 + label.len();
            }
            0xc0 => {
                let &low = msg.get(at + 1).ok_or(DnsError::Truncated)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                jumps += 1;
                // A pointer must go backwards: that alone rules out loops,
                // the jump bound is a second guard.
                if target >= at || jumps > MAX_JUMPS {
                    return Err(DnsError::BadPointer);
                }
                after.get_or_insert(at + 2);
                at = target;
            }
            _ => return Err(DnsError::BadLabel(len & 0xc0)),
        }
    }
}

/// Appends one label in presentation form: dots and backslashes inside a
/// label are escaped, bytes that are not printable ASCII become \DDD.
fn push_label(name: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                name.push('\\');
                name.push(char::from(b));
            }
            0x21..=0x7e => name.push(char::from(b)),
            _ => name.push_str(&format!("\\{b:03}")),
        }
    }
    name.push('.');
}

/// The mnemonic of a record type, or TYPEnnn (RFC 3597) for others.
pub fn type_name(qtype: u16) -> String {
    let known = match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        _ => return format!("TYPE{qtype}"),
    };
    known.to_string()
}

/// The name of a response code (IANA's DNS RCODE registry spelling).
pub fn rcode_name(rcode: u8) -> String {
    let known = match rcode {
        0 => "NoError",
        1 => "FormErr",
        2 => "ServFail",
        3 => "NXDomain",
        4 => "NotImp",
        5 => "Refused",
        6 => "YXDomain",
        7 => "YXRRSet",
        8 => "NXRRSet",
        9 => "NotAuth",
        10 => "NotZone",
        _ => return format!("RCODE{rcode}"),
    };
    known.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of type `qtype`, built by hand.
    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.trim_end_matches('.').split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    /// The answer to `q` with the given records (type, rdata), names compressed.
    fn answer(q: &[u8], rcode: u8, records: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = q.to_vec();
        m[2] = 0x81;
        m[3] = 0x80 | rcode;
        m[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (rtype, data) in records {
            m.extend_from_slice(&[0xc0, 12]);
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            m.extend_from_slice(&(data.len() as u16).to_be_bytes());
            m.extend_from_slice(data);
        }
        m
    }

    #[test]
    fn a_query() {
        let m = parse(&query(0x1234, "example.test", 1)).unwrap();
        assert_eq!((m.id, m.response, m.name.as_str(), m.qtype), (0x1234, false, "example.test.", 1));
        assert_eq!((m.answer_count, m.addresses.len()), (0, 0));
    }

    #[test]
    fn an_answer_with_compressed_names_and_both_address_families() {
        let q = query(7, "www.example.test", 28);
        let v6 = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        let m = parse(&answer(&q, 0, &[(1, &[192, 0, 2, 1]), (28, &v6), (16, b"\x02hi")])).unwrap();
        assert!(m.response);
        assert_eq!(m.answer_count, 3);
        assert_eq!(m.addresses, vec!["192.0.2.1".parse::<IpAddr>().unwrap(), "2001:db8::1".parse().unwrap()]);
        assert_eq!(rcode_name(m.rcode), "NoError");
    }

    #[test]
    fn nxdomain() {
        let m = parse(&answer(&query(9, "nope.test", 1), 3, &[])).unwrap();
        assert_eq!((rcode_name(m.rcode).as_str(), m.answer_count), ("NXDomain", 0));
    }

    #[test]
    fn a_cut_message_keeps_the_answers_that_fit() {
        let q = query(1, "a.test", 1);
        let full = answer(&q, 0, &[(1, &[10, 0, 0, 1]), (1, &[10, 0, 0, 2])]);
        let m = parse(&full[..full.len() - 3]).unwrap();
        assert_eq!((m.answer_count, m.addresses.len()), (2, 1));
    }

    #[test]
    fn garbled_messages_are_errors() {
        assert_eq!(parse(&[0; 5]), Err(DnsError::ShortHeader(5)));
        let mut q = query(1, "loop.test", 1);
        // The question's name points at itself.
        q.truncate(12);
        q.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse(&q), Err(DnsError::BadPointer));
        let mut q = query(1, "x.test", 1);
        q.truncate(14);
        assert_eq!(parse(&q), Err(DnsError::Truncated));
        let mut q = query(1, "x.test", 1);
        q[12] = 0x80;
        assert_eq!(parse(&q), Err(DnsError::BadLabel(0x80)));
        let mut long = query(1, "x", 1)[..12].to_vec();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse(&long), Err(DnsError::LongName));
    }

    #[test]
    fn names_in_presentation_form() {
        let mut q = query(1, "x", 1)[..12].to_vec();
        q.extend_from_slice(&[3, b'a', b'.', 0x1b, 0, 0, 1, 0, 1]);
        assert_eq!(parse(&q).unwrap().name, "a\\.\\027.");
        let mut root = query(1, "x", 1)[..12].to_vec();
        root.extend_from_slice(&[0, 0, 2, 0, 1]);
        let m = parse(&root).unwrap();
        assert_eq!((m.name.as_str(), type_name(m.qtype).as_str()), (".", "NS"));
        assert_eq!(type_name(999), "TYPE999");
    }
}
