//! A container's exit, known at once: each container's init process is
//! watched through a pidfd (readable when it exits), on one thread that
//! polls them all. Its removal arrives before any poststop hook would.

use std::collections::HashMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::collection::{Change, Collection, Subscription};

enum Command {
    Watch { id: String, pid: u32 },
    Forget { id: String },
}

/// Starts the watcher thread; the subscription feeds it.
pub fn watch(_root: &Path, collection: &Arc<Collection>) -> std::io::Result<Subscription> {
    let (tx, rx) = channel::<Command>();
    let (wake_read, wake_write) = nix::unistd::pipe()?;
    let wake_write = Arc::new(wake_write);
    let collection2 = collection.clone();
    std::thread::Builder::new().name("ig-exits".into()).spawn(move || run(rx, wake_read, &collection2))?;
    let notify = move |cmd: Command, tx: &Sender<Command>| {
        if tx.send(cmd).is_ok() {
            let _ = nix::unistd::write(wake_write.as_fd(), &[1]);
        }
    };
    Ok(collection.subscribe(move |change| match change {
        Change::Added(r) => notify(Command::Watch { id: r.runtime.container_id.clone(), pid: r.pid }, &tx),
        Change::Removed(r) => notify(Command::Forget { id: r.runtime.container_id.clone() }, &tx),
    }))
}

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn run(rx: Receiver<Command>, wake: OwnedFd, collection: &Collection) {
    let mut watched: HashMap<String, OwnedFd> = HashMap::new();
    loop {
        let mut gone = Vec::new();
        for cmd in rx.try_iter() {
            match cmd {
                Command::Watch { id, pid } => match pidfd_open(pid) {
                    Ok(fd) => {
                        watched.insert(id, fd);
                    }
                    // ESRCH: it already exited (or pid 0: a record without a process).
                    Err(e) => {
                        tracing::debug!(id, pid, "container process already gone: {e}");
                        gone.push(id);
                    }
                },
                Command::Forget { id } => {
                    watched.remove(&id);
                }
            }
        }
        let ids: Vec<&String> = watched.keys().collect();
        let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
        fds.extend(watched.values().map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)));
        if let Err(e) = poll(&mut fds, PollTimeout::NONE) {
            if e != nix::errno::Errno::EINTR {
                tracing::warn!("exit watcher: poll: {e}");
                return;
            }
            continue;
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            let mut buf = [0u8; 64];
            // End of file: the subscription, the only writer, is gone (the
            // run is stopping). The pipe stays readable (POLLHUP) from now
            // on, so going round again would spin a core until exit.
            if let Ok(0) = nix::unistd::read(&wake, &mut buf) {
                tracing::debug!("exit watcher: unsubscribed, stopping");
                return;
            }
        }
        for (i, fd) in fds.iter().enumerate().skip(1) {
            if fd.revents().is_some_and(|r| !r.is_empty()) {
                gone.push(ids[i - 1].clone());
            }
        }
        drop(fds);
        for id in gone {
            watched.remove(&id);
            if collection.remove(&id).is_some() {
                tracing::debug!(id, "container exited");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once the subscription (the wake pipe's only writer) is gone, the
    /// watcher ends instead of polling a hung-up pipe for ever.
    #[test]
    fn the_watcher_ends_when_its_subscription_is_dropped() {
        let collection = Collection::new();
        let (_tx, rx) = channel::<Command>();
        let (wake_read, wake_write) = nix::unistd::pipe().unwrap();
        let (done_tx, done) = channel();
        std::thread::spawn(move || {
            run(rx, wake_read, &collection);
            let _ = done_tx.send(());
        });
        nix::unistd::write(wake_write.as_fd(), &[1]).unwrap();
        drop(wake_write);
        done.recv_timeout(std::time::Duration::from_secs(30)).expect("the exit watcher still runs");
    }
}
