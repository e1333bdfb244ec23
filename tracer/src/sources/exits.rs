//! A container's exit, known at once: each container's init process is
//! watched through a pidfd (readable when it exits), on one thread that
//! waits on them all with epoll. Its removal arrives before any poststop hook would.

use std::collections::HashMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

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
    // One wake-up byte for any number of commands sent before the watcher
    // drains them: a start-up with 1,000 spooled containers writes one,
    // not 1,000 (and the watcher wakes once).
    let pending = Arc::new(AtomicBool::new(false));
    let (collection2, pending2) = (collection.clone(), pending.clone());
    std::thread::Builder::new()
        .name("ig-exits".into())
        .spawn(move || run(rx, wake_read, &pending2, &collection2))?;
    let notify = move |cmd: Command, tx: &Sender<Command>| {
        if tx.send(cmd).is_ok() && !pending.swap(true, Ordering::AcqRel) {
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

/// The wake pipe's token; each pidfd gets one of its own from 1 on.
const WAKE: u64 = 0;

/// Waits on every pidfd at once with epoll: a container's exit, or one
/// more container to watch, costs the same with 10 or 10,000 of them
/// (poll(2) would rebuild and rescan the whole set on every change).
/// `pending` is set by whoever wrote the wake byte; cleared here before the
/// commands are drained, so a command sent after the drain writes again.
fn run(rx: Receiver<Command>, wake: OwnedFd, pending: &AtomicBool, collection: &Collection) {
    let epoll = match Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
        .and_then(|e| e.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE)).map(|()| e))
    {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(
                "exit watcher: epoll: {e}; container exits are seen from their poststop hooks only"
            );
            return;
        }
    };
    let mut watched: HashMap<u64, (String, OwnedFd)> = HashMap::new();
    let mut token_of: HashMap<String, u64> = HashMap::new();
    let mut next_token = WAKE + 1;
    let mut events = vec![EpollEvent::empty(); 64];
    let mut waited_for_load = false;
    loop {
        let mut gone = Vec::new();
        let mut commands: Vec<Command> = rx.try_iter().collect();
        // The first commands: most likely the spool's 1,000 containers at
        // start-up. Watching them waits until the initial load is done, so
        // that their pidfds and epoll registrations do not take a core from
        // the load and the gadget's program loading, which "tracing
        // started" waits for (an exit meanwhile is seen a few ms later).
        if !commands.is_empty() && !waited_for_load {
            collection.wait_initial_load();
            waited_for_load = true;
            commands.extend(rx.try_iter());
        }
        for cmd in commands {
            match cmd {
                Command::Watch { id, pid } => {
                    // A replaced record: its old process is not watched any more.
                    forget(&epoll, &mut watched, &mut token_of, &id);
                    match pidfd_open(pid) {
                        Ok(fd) => {
                            let token = next_token;
                            next_token += 1;
                            match epoll.add(&fd, EpollEvent::new(EpollFlags::EPOLLIN, token)) {
                                Ok(()) => {
                                    token_of.insert(id.clone(), token);
                                    watched.insert(token, (id, fd));
                                }
                                Err(e) => tracing::warn!(id, pid, "exit watcher: epoll_ctl: {e}"),
                            }
                        }
                        // ESRCH: it already exited (or pid 0: a record without a process).
                        Err(e) => {
                            tracing::debug!(id, pid, "container process already gone: {e}");
                            gone.push(id);
                        }
                    }
                }
                Command::Forget { id } => forget(&epoll, &mut watched, &mut token_of, &id),
            }
        }
        // What is known gone goes now; otherwise wait for an exit or a command.
        if gone.is_empty() {
            let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("exit watcher: epoll_wait: {e}");
                    return;
                }
            };
            for event in &events[..n] {
                if event.data() == WAKE {
                    let mut buf = [0u8; 4096];
                    // End of file: the subscription, the only writer, is gone
                    // (the run is stopping). The pipe stays readable from now
                    // on, so going round again would spin a core until exit.
                    if let Ok(0) = nix::unistd::read(&wake, &mut buf) {
                        tracing::debug!("exit watcher: unsubscribed, stopping");
                        return;
                    }
                    pending.swap(false, Ordering::AcqRel);
                } else if let Some((id, fd)) = watched.remove(&event.data()) {
                    let _ = epoll.delete(&fd);
                    token_of.remove(&id);
                    gone.push(id);
                }
            }
        }
        for id in gone {
            if collection.remove(&id).is_some() {
                tracing::debug!(id, "container exited");
            }
        }
    }
}

/// Stops watching container `id` (its pidfd closes).
fn forget(
    epoll: &Epoll,
    watched: &mut HashMap<u64, (String, OwnedFd)>,
    token_of: &mut HashMap<String, u64>,
    id: &str,
) {
    if let Some((_, fd)) = token_of.remove(id).and_then(|token| watched.remove(&token)) {
        let _ = epoll.delete(&fd);
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
            run(rx, wake_read, &AtomicBool::new(false), &collection);
            let _ = done_tx.send(());
        });
        nix::unistd::write(wake_write.as_fd(), &[1]).unwrap();
        drop(wake_write);
        done.recv_timeout(std::time::Duration::from_secs(30)).expect("the exit watcher still runs");
    }

    fn record(id: &str, pid: u32) -> shared::ContainerRecord {
        let mut r = shared::ContainerRecord { pid, ..Default::default() };
        r.runtime.container_id = id.into();
        r
    }

    /// Of many watched processes, the one that exits is removed, the others
    /// stay; a record whose process is already gone goes at once.
    #[test]
    fn an_exit_removes_its_container_and_only_it() {
        let collection = Collection::new();
        let _watch = watch(Path::new("/"), &collection).unwrap();
        let mut children: Vec<std::process::Child> =
            (0..50).map(|_| std::process::Command::new("sleep").arg("60").spawn().unwrap()).collect();
        for (i, c) in children.iter().enumerate() {
            collection.add(record(&format!("c{i}"), c.id()), crate::collection::Source::Spool);
        }
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        let ended_pid = ended.id();
        ended.wait().unwrap();
        collection.add(record("already-gone", ended_pid), crate::collection::Source::Spool);
        children[17].kill().unwrap();
        children[17].wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while collection.by_id("c17").is_some() || collection.by_id("already-gone").is_some() {
            assert!(std::time::Instant::now() < deadline, "the exits were never seen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(collection.len(), 49, "the other 49 still run");
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
