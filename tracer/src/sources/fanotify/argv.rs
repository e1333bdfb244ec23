//! The argument vector of a thread that is inside execve and held by a
//! fanotify permission event. At that moment /proc/<tid>/cmdline still shows
//! the caller's old command line; the new arguments are the execve call's
//! own: /proc/<tid>/syscall gives its argv pointer, and /proc/<tid>/mem
//! reads the strings from the caller's memory, which is still mapped (the
//! kernel opens the binary before it replaces the memory). Unlike a BPF
//! read at syscall entry, this faults pages in, so arguments in untouched
//! pages are read too, and it costs nothing for the execs of other binaries.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Upper bounds: a runtime's command line is a few hundred bytes.
const MAX_ARGS: usize = 256;
const MAX_ARG_BYTES: usize = 4096;
const MAX_TOTAL_BYTES: usize = 64 << 10;
/// How long a thread that has just raised its exec event may take to block.
const RUNNING_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum ArgvError {
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("thread {tid} is not in execve or execveat ({syscall:?})")]
    NotExec { tid: i32, syscall: String },
    #[error("reading the argv of thread {tid} at {addr:#x}")]
    Mem {
        tid: i32,
        addr: u64,
        #[source]
        source: std::io::Error,
    },
}

/// x86-64 numbers of execve and execveat and where their argv argument is.
fn argv_pointer(syscall_line: &str) -> Option<u64> {
    let mut fields = syscall_line.split_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    let args: Vec<u64> =
        fields.take(6).filter_map(|f| u64::from_str_radix(f.trim_start_matches("0x"), 16).ok()).collect();
    match (nr, args.len()) {
        (59, 6) => Some(args[1]),  // execve(filename, argv, envp)
        (322, 6) => Some(args[2]), // execveat(dirfd, filename, argv, envp, flags)
        _ => None,
    }
}

/// Reads the argv that thread `tid` passed to the execve it is blocked in.
pub fn of_blocked_exec(root: &Path, tid: i32) -> Result<Vec<String>, ArgvError> {
    let syscall_path = root.join(format!("proc/{tid}/syscall"));
    let read = || {
        std::fs::read_to_string(&syscall_path)
            .map_err(|source| ArgvError::Io { path: syscall_path.clone(), source })
    };
    let mut line = read()?;
    // The event can be read before the thread has gone to sleep waiting for
    // the answer: the kernel then says "running" for a moment (measured: 2
    // creates in 100 `ctr run`s missed without this wait).
    let waited = std::time::Instant::now();
    while line.starts_with("running") && waited.elapsed() < RUNNING_WAIT {
        std::thread::sleep(std::time::Duration::from_micros(50));
        line = read()?;
    }
    let Some(argv) = argv_pointer(&line) else {
        return Err(ArgvError::NotExec { tid, syscall: line.trim().to_string() });
    };
    let mem_path = root.join(format!("proc/{tid}/mem"));
    let mem = File::open(&mem_path).map_err(|source| ArgvError::Io { path: mem_path, source })?;
    read_argv(&mem, argv).map_err(|(addr, source)| ArgvError::Mem { tid, addr, source })
}

/// Reads a NULL-terminated array of C string pointers at `argv` in `mem`.
fn read_argv(mem: &impl FileExt, argv: u64) -> Result<Vec<String>, (u64, std::io::Error)> {
    let mut out = Vec::new();
    let mut total = 0;
    for i in 0..MAX_ARGS as u64 {
        let slot = argv + i * 8;
        let mut ptr = [0u8; 8];
        mem.read_exact_at(&mut ptr, slot).map_err(|e| (slot, e))?;
        let ptr = u64::from_ne_bytes(ptr);
        if ptr == 0 {
            break;
        }
        let s = read_c_string(mem, ptr).map_err(|e| (ptr, e))?;
        total += s.len();
        out.push(s);
        if total > MAX_TOTAL_BYTES {
            break;
        }
    }
    Ok(out)
}

fn read_c_string(mem: &impl FileExt, addr: u64) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 256];
    while bytes.len() < MAX_ARG_BYTES {
        // Never read across a page boundary in one go: the next page may be unmapped.
        let at = addr + bytes.len() as u64;
        let to_page_end = (4096 - (at % 4096)) as usize;
        let want = chunk.len().min(to_page_end);
        let n = mem.read_at(&mut chunk[..want], at)?;
        if n == 0 {
            break;
        }
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            bytes.extend_from_slice(&chunk[..end]);
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_argv_in_execve_and_execveat_lines() {
        let execve = "59 0x55d0 0x7ffd1000 0x7ffd2000 0x0 0x0 0x0 0x7ffd0ff8 0x7f00";
        assert_eq!(argv_pointer(execve), Some(0x7ffd1000));
        let execveat = "322 0x3 0x55d0 0x7ffd1000 0x7ffd2000 0x1000 0x0 0x7ffd0ff8 0x7f00";
        assert_eq!(argv_pointer(execveat), Some(0x7ffd1000));
        assert_eq!(argv_pointer("running"), None);
        assert_eq!(argv_pointer("0 0x3 0x1 0x2 0x0 0x0 0x0 0x1 0x2"), None);
        assert_eq!(argv_pointer(""), None);
    }

    #[test]
    fn reads_this_process_argv_array_through_its_own_mem() {
        // Build a C argv array in our own memory and read it back through
        // /proc/self/mem, the way the watcher reads a blocked caller's.
        let strings: Vec<std::ffi::CString> = ["runc", "create", "--bundle", "/b", "x"]
            .iter()
            .map(|s| std::ffi::CString::new(*s).unwrap())
            .collect();
        let mut ptrs: Vec<u64> = strings.iter().map(|s| s.as_ptr() as u64).collect();
        ptrs.push(0);
        let mem = File::open("/proc/self/mem").unwrap();
        let argv = read_argv(&mem, ptrs.as_ptr() as u64).unwrap();
        assert_eq!(argv, vec!["runc", "create", "--bundle", "/b", "x"]);
    }
}
