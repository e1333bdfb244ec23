//! A peer-to-peer D-Bus client, just what `--auto-sd-unit-restart` needs
//! to ask systemd over its private socket: EXTERNAL authentication with
//! Unix fd passing, method calls (with file descriptors) and their replies.
//! Ours rather than a D-Bus crate: ig makes five kinds of call to one peer,
//! and a general D-Bus library was the largest part of ig's binary after
//! its own code (tests/tests/sd_unit_restart.rs still runs a real one, zbus,
//! as the peer).
//!
//! Blocking on purpose: systemd answers on a local socket at once, and each
//! read and write is bounded by a timeout, so a hung peer is an error, not
//! a hang.

pub mod wire;

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use thiserror::Error;

pub use wire::Value;

#[derive(Debug, Error)]
pub enum DbusError {
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("D-Bus authentication: the peer answered {0:?}")]
    Auth(String),
    #[error("the peer does not take file descriptors (it answered {0:?})")]
    NoFdPassing(String),
    #[error("{name}: {message}")]
    Remote { name: String, message: String },
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error("{member} returned {got:?}, not {wanted}")]
    UnexpectedReply { member: String, got: Vec<Value>, wanted: &'static str },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DbusError {
    let context = context.into();
    move |source| DbusError::Io { context, source }
}

/// One authenticated connection.
pub struct Connection {
    stream: UnixStream,
    serial: u32,
}

/// The destination, object and interface a call goes to.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: Option<&'a str>,
}

impl Connection {
    /// Connects to `socket` and authenticates as this process's uid,
    /// asking for fd passing.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Self, DbusError> {
        let stream =
            UnixStream::connect(socket).map_err(io(format!("connecting to {}", socket.display())))?;
        stream.set_read_timeout(Some(timeout)).map_err(io("setting the D-Bus read timeout"))?;
        stream.set_write_timeout(Some(timeout)).map_err(io("setting the D-Bus write timeout"))?;
        let mut conn = Connection { stream, serial: 0 };
        conn.authenticate()?;
        Ok(conn)
    }

    fn authenticate(&mut self) -> Result<(), DbusError> {
        let uid = nix::unistd::getuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        // The protocol opens with one NUL byte (where credentials may travel).
        self.send_line(&format!("\0AUTH EXTERNAL {hex}\r\n"))?;
        let answer = self.read_line()?;
        if !answer.starts_with("OK ") {
            return Err(DbusError::Auth(answer));
        }
        self.send_line("NEGOTIATE_UNIX_FD\r\n")?;
        let answer = self.read_line()?;
        if answer != "AGREE_UNIX_FD" {
            return Err(DbusError::NoFdPassing(answer));
        }
        self.send_line("BEGIN\r\n")
    }

    fn send_line(&mut self, line: &str) -> Result<(), DbusError> {
        self.stream.write_all(line.as_bytes()).map_err(io("writing to the D-Bus peer"))
    }

    /// One line of the authentication exchange; read byte by byte, as the
    /// binary protocol follows it on the same stream.
    fn read_line(&mut self) -> Result<String, DbusError> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(DbusError::Auth(String::from_utf8_lossy(&line).into_owned()));
            }
            match self.stream.read(&mut byte) {
                Ok(0) => return Err(DbusError::Auth("the connection closed".into())),
                Ok(_) => line.push(byte[0]),
                Err(e) => return Err(io("reading the D-Bus authentication")(e)),
            }
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Calls `member` with `body`, passing `fds` (the body's `Value::Fd(i)`
    /// is `fds[i]`), and returns the reply's body or the peer's error.
    pub fn call(
        &mut self,
        to: Target<'_>,
        member: &str,
        body: &[Value],
        fds: &[BorrowedFd<'_>],
    ) -> Result<Vec<Value>, DbusError> {
        self.serial = self.serial.wrapping_add(1).max(1);
        let serial = self.serial;
        let bytes = wire::Call {
            serial,
            destination: to.destination,
            path: to.path,
            interface: to.interface,
            member,
            body,
            fds: fds.len() as u32,
        }
        .encode();
        self.send(&bytes, fds).map_err(io(format!("sending {member}")))?;
        loop {
            let msg = self.receive().map_err(|e| match e {
                DbusError::Io { source, .. } => io(format!("waiting for {member}'s reply"))(source),
                other => other,
            })?;
            // Signals and other replies are not ours.
            if msg.reply_serial != Some(serial) {
                continue;
            }
            return match msg.kind {
                wire::METHOD_RETURN => Ok(msg.body),
                wire::ERROR => Err(DbusError::Remote {
                    name: msg.error_name.unwrap_or_else(|| "an unnamed D-Bus error".into()),
                    message: msg.body.first().and_then(Value::as_str).unwrap_or_default().to_string(),
                }),
                _ => continue,
            };
        }
    }

    /// Writes a message; the descriptors travel with its first bytes.
    fn send(&mut self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
        let mut sent = 0;
        if !fds.is_empty() {
            let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
            let cmsg = [ControlMessage::ScmRights(&raw)];
            sent = sendmsg::<()>(
                self.stream.as_raw_fd(),
                &[IoSlice::new(bytes)],
                &cmsg,
                MsgFlags::empty(),
                None,
            )
            .map_err(std::io::Error::from)?;
        }
        self.stream.write_all(&bytes[sent..])
    }

    fn receive(&mut self) -> Result<wire::Message, DbusError> {
        let mut head = [0u8; 16];
        self.stream.read_exact(&mut head).map_err(io("reading a D-Bus message"))?;
        let len = wire::frame_len(&head)?;
        let mut msg = head.to_vec();
        msg.resize(len, 0);
        self.stream.read_exact(&mut msg[16..]).map_err(io("reading a D-Bus message"))?;
        Ok(wire::parse(&msg)?)
    }
}
