//! Reading the OCI state from stdin within the hook's deadline, on the
//! calling thread: a runtime that never closes stdin must not hold the hook
//! past its bound, and a thread to wait on it might not be granted (a pids
//! cgroup at its limit, RLIMIT_NPROC), so poll(2) keeps the time instead.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Instant;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("stdin was not closed before the deadline")]
    Deadline,
    #[error("the OCI state on stdin is larger than {0} bytes")]
    TooLarge(u64),
    #[error("reading stdin: {0}")]
    Read(String),
}

/// Reads `fd` to its end, at most `max` bytes, giving up at `deadline`.
pub fn read_until(fd: BorrowedFd<'_>, max: u64, deadline: Instant) -> Result<Vec<u8>, InputError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(InputError::Deadline);
        }
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // Rounded up: poll(2) waits whole milliseconds.
        let ms = left.as_micros().div_ceil(1000).clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, its count, a timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(InputError::Read(e.to_string()));
        }
        if n == 0 {
            continue; // the loop's top decides whether the deadline passed
        }
        // Readable, hung up or in error: read(2) now returns at once with
        // data, 0 (end) or the error.
        // SAFETY: the buffer is valid for its length.
        let got = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        if got < 0 {
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock => continue,
                _ => return Err(InputError::Read(e.to_string())),
            }
        }
        if got == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..got as usize]);
        if buf.len() as u64 > max {
            return Err(InputError::TooLarge(max));
        }
    }
}

/// [`read_until`] on the process's stdin.
pub fn read_stdin(max: u64, deadline: Instant) -> Result<Vec<u8>, InputError> {
    let stdin = std::io::stdin();
    read_until(stdin.as_fd(), max, deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    #[test]
    fn reads_to_the_end() {
        let (mut w, r) = UnixStream::pair().unwrap();
        w.write_all(b"{\"id\":\"x\"}").unwrap();
        drop(w);
        let got = read_until(r.as_fd(), 1024, Instant::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(got, b"{\"id\":\"x\"}");
    }

    #[test]
    fn an_open_stdin_ends_at_the_deadline() {
        let (mut w, r) = UnixStream::pair().unwrap();
        w.write_all(b"{").unwrap();
        let started = Instant::now();
        let got = read_until(r.as_fd(), 1024, started + Duration::from_millis(100));
        assert_eq!(got, Err(InputError::Deadline));
        assert!(started.elapsed() >= Duration::from_millis(100));
        drop(w);
    }

    #[test]
    fn more_than_the_limit_is_refused() {
        let (mut w, r) = UnixStream::pair().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&[b' '; 100_000]);
        });
        let got = read_until(r.as_fd(), 50_000, Instant::now() + Duration::from_secs(5));
        assert_eq!(got, Err(InputError::TooLarge(50_000)));
    }
}
