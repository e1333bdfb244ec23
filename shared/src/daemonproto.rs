//! The wire format between `gadgetctl` and `ig daemon`, on a unix socket or
//! inside mutual TLS: length-delimited frames. Each frame is a 4-byte
//! big-endian length (of what follows), a 1-byte kind, and a payload:
//! control messages are JSON (small, versioned, readable in a capture);
//! the gadget's output is passed as raw bytes (it is already JSON lines or
//! columns, so wrapping it again would only cost time).
//!
//! A client sends one `Request`; the daemon answers with `Started`, any
//! number of `Stdout`/`Stderr` frames, and one `Exit`. The client stops the
//! run by closing the connection (or sending `Stop`).
//!
//! Version 2 adds headless instances: a request's [`Action`] starts one
//! (`detach`), lists them, attaches to one's output, or deletes one. A
//! plain run is still sent as version 1, so an older daemon serves it.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The version of a plain run's request.
pub const VERSION: u32 = 1;
/// The version of a request with an instance [`Action`].
pub const INSTANCES_VERSION: u32 = 2;
/// Largest frame a daemon accepts from a client: a request is a command
/// line, a few hundred bytes.
pub const MAX_REQUEST: usize = 1 << 20;
/// Largest frame a client accepts from a daemon.
pub const MAX_RESPONSE: usize = 16 << 20;
/// Written once: both constants below are made from it.
macro_rules! default_socket {
    () => {
        "/var/run/ig/ig.socket"
    };
}
/// The daemon's unix socket.
pub const DEFAULT_SOCKET: &str = default_socket!();
/// The same as an address (`ig daemon -H`, `gadgetctl --remote-address`).
pub const DEFAULT_ADDRESS: &str = concat!("unix://", default_socket!());

/// Where a daemon listens and a client connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `unix:///path`
    Unix(std::path::PathBuf),
    /// `tcp://host:port`
    Tcp(String),
}

impl Address {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!("{s}: a unix socket path must be absolute (unix:///path)"));
            }
            return Ok(Address::Unix(path.into()));
        }
        if let Some(hostport) = s.strip_prefix("tcp://") {
            match hostport.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                    return Ok(Address::Tcp(hostport.to_string()));
                }
                _ => return Err(format!("{s}: expected tcp://HOST:PORT")),
            }
        }
        Err(format!("{s}: expected unix:///path or tcp://HOST:PORT"))
    }

    /// The host part of a TCP address, without IPv6 brackets.
    pub fn tcp_host(&self) -> Option<&str> {
        match self {
            Address::Tcp(hp) => {
                hp.rsplit_once(':').map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            }
            Address::Unix(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// client -> daemon, JSON [`Request`].
    Request = 1,
    /// client -> daemon, empty: stop the run.
    Stop = 2,
    /// daemon -> client, empty: the gadget is attached and tracing.
    Started = 3,
    /// daemon -> client, raw bytes of the command's standard output.
    Stdout = 4,
    /// daemon -> client, raw bytes of the command's messages.
    Stderr = 5,
    /// daemon -> client, JSON [`Exit`]; the last frame.
    Exit = 6,
}

impl TryFrom<u8> for Kind {
    type Error = ProtoError;
    fn try_from(b: u8) -> Result<Self, ProtoError> {
        Ok(match b {
            1 => Kind::Request,
            2 => Kind::Stop,
            3 => Kind::Started,
            4 => Kind::Stdout,
            5 => Kind::Stderr,
            6 => Kind::Exit,
            other => return Err(ProtoError::Kind(other)),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub version: u32,
    /// The command line after the program name, e.g. `["trace", "exec", "-o", "json"]`.
    pub args: Vec<String>,
    /// Width of the client's terminal, for columns output.
    #[serde(default)]
    pub terminal_width: Option<u16>,
    /// What to do; a run streamed to this client when absent.
    #[serde(default, skip_serializing_if = "Action::is_run")]
    pub action: Action,
}

impl Request {
    /// A request for `action`, at the version that carries it.
    pub fn new(args: Vec<String>, terminal_width: Option<u16>, action: Action) -> Self {
        let version = if action.is_run() { VERSION } else { INSTANCES_VERSION };
        Self { version, args, terminal_width, action }
    }
}

/// What a request asks of the daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Action {
    /// Run `args` and stream its output to this client until it goes away.
    #[default]
    Run,
    /// Start `args` as a headless instance that outlives this client and
    /// the daemon's restarts; the daemon answers with its name.
    Detach { name: Option<String> },
    /// The instances, as a table or (`json`) JSON.
    List { json: bool },
    /// Stream an instance's output from now on; detaching leaves it running.
    Attach { name: String },
    /// Stop an instance and forget it.
    Delete { name: String },
}

impl Action {
    pub fn is_run(&self) -> bool {
        matches!(self, Action::Run)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exit {
    /// 0: success; 1: the command failed; 2: the request was refused.
    pub code: i32,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("a frame of {len} bytes is larger than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("an empty frame")]
    Empty,
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("a malformed {kind:?} message")]
    Json {
        kind: Kind,
        #[source]
        source: serde_json::Error,
    },
    #[error("protocol version {0} is not supported (this side speaks {VERSION} and {INSTANCES_VERSION})")]
    Version(u32),
    #[error("an instance request needs protocol version {INSTANCES_VERSION}")]
    ActionVersion,
}

/// The kind and payload length announced by a 5-byte frame header.
pub fn parse_header(header: [u8; 5], max: usize) -> Result<(Kind, usize), ProtoError> {
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len == 0 {
        return Err(ProtoError::Empty);
    }
    if len > max {
        return Err(ProtoError::TooLarge { len, max });
    }
    Ok((Kind::try_from(header[4])?, len - 1))
}

/// Encodes one frame.
pub fn frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.extend_from_slice(&((payload.len() + 1) as u32).to_be_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(payload);
    buf
}

/// Encodes one JSON control frame.
pub fn json_frame(kind: Kind, value: &impl Serialize) -> Vec<u8> {
    frame(kind, &serde_json::to_vec(value).expect("control messages serialize"))
}

pub fn write_frame(w: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    w.write_all(&frame(kind, payload))?;
    w.flush()
}

/// Reads one frame; None on a clean end of stream before a header.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Option<(Kind, Vec<u8>)>, ProtoError> {
    let mut header = [0u8; 5];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ProtoError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (kind, len) = parse_header(header, max)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

pub fn parse_json<'a, T: Deserialize<'a>>(kind: Kind, payload: &'a [u8]) -> Result<T, ProtoError> {
    serde_json::from_slice(payload).map_err(|source| ProtoError::Json { kind, source })
}

/// Parses a request and checks its version.
pub fn parse_request(payload: &[u8]) -> Result<Request, ProtoError> {
    let req: Request = parse_json(Kind::Request, payload)?;
    match req.version {
        VERSION if !req.action.is_run() => Err(ProtoError::ActionVersion),
        VERSION | INSTANCES_VERSION => Ok(req),
        other => Err(ProtoError::Version(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = Request::new(vec!["trace".into(), "exec".into()], Some(80), Action::Run);
        assert_eq!(req.version, VERSION, "a plain run stays version 1");
        assert!(!String::from_utf8(serde_json::to_vec(&req).unwrap()).unwrap().contains("action"));
        let mut buf = json_frame(Kind::Request, &req);
        buf.extend(frame(Kind::Stdout, b"{\"pid\":1}\n"));
        let mut r = &buf[..];
        let (k, p) = read_frame(&mut r, MAX_REQUEST).unwrap().unwrap();
        assert_eq!(k, Kind::Request);
        assert_eq!(parse_request(&p).unwrap(), req);
        let (k, p) = read_frame(&mut r, MAX_REQUEST).unwrap().unwrap();
        assert_eq!((k, p.as_slice()), (Kind::Stdout, &b"{\"pid\":1}\n"[..]));
        assert!(read_frame(&mut r, MAX_REQUEST).unwrap().is_none());
    }

    #[test]
    fn refuses_oversized_empty_unknown_and_other_versions() {
        let huge = (100u32 << 20).to_be_bytes();
        assert!(matches!(
            parse_header([huge[0], huge[1], huge[2], huge[3], 1], MAX_REQUEST),
            Err(ProtoError::TooLarge { .. })
        ));
        assert!(matches!(parse_header([0, 0, 0, 0, 1], MAX_REQUEST), Err(ProtoError::Empty)));
        assert!(matches!(parse_header([0, 0, 0, 1, 99], MAX_REQUEST), Err(ProtoError::Kind(99))));
        let old = serde_json::to_vec(&serde_json::json!({"version": 0, "args": []})).unwrap();
        assert!(matches!(parse_request(&old), Err(ProtoError::Version(0))));
        let mixed = serde_json::json!({"version": 1, "args": [], "action": {"kind": "list", "json": false}});
        assert!(matches!(
            parse_request(&serde_json::to_vec(&mixed).unwrap()),
            Err(ProtoError::ActionVersion)
        ));
        assert!(matches!(parse_request(b"\xff\x00garbage"), Err(ProtoError::Json { .. })));
        let mut truncated = &frame(Kind::Stdout, b"abcdef")[..7];
        assert!(matches!(read_frame(&mut truncated, MAX_REQUEST), Err(ProtoError::Io(_))));
    }

    #[test]
    fn instance_actions_round_trip_at_version_2() {
        for action in [
            Action::Detach { name: Some("web-exec".into()) },
            Action::Detach { name: None },
            Action::List { json: true },
            Action::Attach { name: "a".into() },
            Action::Delete { name: "a".into() },
        ] {
            let req = Request::new(vec!["trace".into(), "exec".into()], None, action);
            assert_eq!(req.version, INSTANCES_VERSION);
            let bytes = serde_json::to_vec(&req).unwrap();
            assert_eq!(parse_request(&bytes).unwrap(), req);
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(Address::parse("unix:///run/ig.sock"), Ok(Address::Unix("/run/ig.sock".into())));
        assert_eq!(Address::parse("tcp://127.0.0.1:8888"), Ok(Address::Tcp("127.0.0.1:8888".into())));
        assert_eq!(Address::parse("tcp://[::1]:8888").unwrap().tcp_host(), Some("::1"));
        for bad in ["unix://rel", "tcp://:1", "tcp://h:x", "tcp://h", "http://x", ""] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic_the_reader(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut r = &bytes[..];
            while let Ok(Some((kind, payload))) = read_frame(&mut r, MAX_REQUEST) {
                if kind == Kind::Request {
                    let _ = parse_request(&payload);
                }
            }
        }
    }
}
