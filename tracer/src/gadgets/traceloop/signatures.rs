//! The arguments of each syscall, as the running kernel describes them
//! (tracefs `events/syscalls/sys_enter_<name>/format`), to name and show a
//! recorded call's arguments, and to tell the kernel side which argument
//! is a string or a buffer worth keeping. A kernel without syscall
//! tracepoints (CONFIG_FTRACE_SYSCALLS) describes none: calls then show
//! their six raw registers.

use std::collections::HashMap;
use std::path::Path;

/// One argument: its C type and name (`const char *`, `filename`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    pub ty: String,
    pub name: String,
}

impl Arg {
    fn is_pointer(&self) -> bool {
        self.ty.contains('*')
    }

    /// Text the call reads from the caller (`const char *`): output
    /// buffers (`char *buf` of read) hold nothing yet at entry.
    fn is_input_text(&self) -> bool {
        let t = self.ty.replace(' ', "");
        t == "constchar*" || t == "constchar__user*"
    }

    fn is_size(&self) -> bool {
        matches!(self.ty.as_str(), "size_t" | "unsigned long" | "int" | "unsigned int")
            && matches!(self.name.as_str(), "count" | "len" | "size")
    }

    fn is_signed(&self) -> bool {
        matches!(self.ty.as_str(), "int" | "long" | "pid_t" | "off_t" | "loff_t" | "clockid_t" | "timer_t")
    }

    /// C types of 32 bits: their register's upper half is not theirs.
    fn is_32_bit(&self) -> bool {
        matches!(
            self.ty.as_str(),
            "int" | "unsigned int" | "pid_t" | "uid_t" | "gid_t" | "umode_t" | "u32" | "clockid_t"
        )
    }
}

/// What the kernel said of each syscall number it traces.
#[derive(Debug, Default)]
pub struct Signatures {
    by_nr: HashMap<u32, Vec<Arg>>,
}

/// Parses one format file's argument fields (those after `__syscall_nr`).
pub fn parse_format(text: &str) -> Vec<Arg> {
    let mut args = Vec::new();
    let mut after_nr = false;
    for line in text.lines() {
        let Some(decl) = line.trim().strip_prefix("field:").and_then(|f| f.split(';').next()) else {
            continue;
        };
        let Some(split) = decl.rfind([' ', '*']) else { continue };
        let (ty, name) = (decl[..=split].trim(), decl[split + 1..].trim());
        if name == "__syscall_nr" {
            after_nr = true;
        } else if after_nr {
            args.push(Arg { ty: ty.to_string(), name: name.to_string() });
        }
    }
    args
}

impl Signatures {
    /// Reads the formats of every syscall the name table knows, from
    /// `events` (tracefs's `events/` directory).
    pub fn read(events: &Path) -> Self {
        let dir = events.join("syscalls");
        let mut by_nr = HashMap::new();
        for nr in 0..super::bpf::IG_TRACELOOP_NRS {
            let Some(name) = crate::syscalls::known_name(nr) else { continue };
            // stat, fstat, lstat and uname are traced as newstat, ...
            let text = [format!("sys_enter_{name}"), format!("sys_enter_new{name}")]
                .iter()
                .find_map(|event| std::fs::read_to_string(dir.join(event).join("format")).ok());
            if let Some(text) = text {
                by_nr.insert(nr, parse_format(&text));
            }
        }
        Self { by_nr }
    }

    pub fn is_empty(&self) -> bool {
        self.by_nr.is_empty()
    }

    /// The kernel side's table: per syscall number, the argument to keep
    /// (index + 1, bits 0-3) and, for a buffer, its length's (bits 4-7).
    pub fn string_args(&self) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = self
            .by_nr
            .iter()
            .filter_map(|(&nr, args)| {
                let i = args.iter().position(Arg::is_input_text)?;
                let len = args.get(i + 1).filter(|a| a.is_size()).map_or(0, |_| i as u32 + 2);
                Some((nr, (i as u32 + 1) | (len << 4)))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// `name=value, ...` for a call's registers; `text` is the argument the
    /// kernel kept (its index) and its bytes, `cut` when there was more.
    pub fn parameters(&self, nr: Option<u32>, regs: &[u64; 6], text: Option<(usize, &[u8], bool)>) -> String {
        let Some(args) = nr.and_then(|nr| self.by_nr.get(&nr)) else {
            return regs.iter().map(|r| format!("{r:#x}")).collect::<Vec<_>>().join(", ");
        };
        let mut out = Vec::with_capacity(args.len());
        for (i, (arg, &reg)) in args.iter().zip(regs).enumerate() {
            let value = match text {
                Some((at, bytes, cut)) if at == i => quoted(bytes, cut),
                _ => value_text(arg, reg),
            };
            out.push(format!("{}={value}", arg.name));
        }
        out.join(", ")
    }
}

/// A register's value as its C type reads.
fn value_text(arg: &Arg, reg: u64) -> String {
    if arg.is_pointer() {
        return if reg == 0 { "NULL".into() } else { format!("{reg:#x}") };
    }
    let reg = if arg.is_32_bit() { reg & 0xffff_ffff } else { reg };
    match arg.name.as_str() {
        "flags" | "prot" => return format!("{reg:#x}"),
        "mode" if reg != 0 => return format!("0{reg:o}"),
        _ => {}
    }
    if arg.is_signed() {
        let v = if arg.is_32_bit() { i64::from(reg as u32 as i32) } else { reg as i64 };
        // openat(AT_FDCWD, ...) and the other *at calls.
        if v == -100 && arg.name.ends_with("fd") {
            return "AT_FDCWD".into();
        }
        return v.to_string();
    }
    reg.to_string()
}

/// Bytes as a C string literal, non-printable ones escaped.
fn quoted(bytes: &[u8], cut: bool) -> String {
    let mut s = String::with_capacity(bytes.len() + 5);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    if cut {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str = "name: sys_enter_openat\nID: 782\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
        \tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n\
        \tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n\
        \tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;\n\
        \tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n\n\
        print fmt: \"dfd: 0x%08lx\"\n";

    fn sig(nr: u32, text: &str) -> Signatures {
        Signatures { by_nr: HashMap::from([(nr, parse_format(text))]) }
    }

    #[test]
    fn reads_the_arguments_after_the_syscall_number() {
        let args = parse_format(OPENAT);
        let names: Vec<(&str, &str)> = args.iter().map(|a| (a.ty.as_str(), a.name.as_str())).collect();
        assert_eq!(
            names,
            [("int", "dfd"), ("const char *", "filename"), ("int", "flags"), ("umode_t", "mode")]
        );
    }

    #[test]
    fn keeps_strings_and_buffers_with_their_length() {
        let write = OPENAT
            .replace("int dfd", "unsigned int fd")
            .replace("const char * filename", "const char * buf")
            .replace("int flags", "size_t count");
        let s = Signatures { by_nr: HashMap::from([(257, parse_format(OPENAT)), (1, parse_format(&write))]) };
        // write: buf (arg 2) with its length in count (arg 3); openat: filename (arg 2).
        assert_eq!(s.string_args(), [(1, 2 | (3 << 4)), (257, 2)]);
    }

    #[test]
    fn shows_each_argument_as_its_type_reads() {
        let s = sig(257, OPENAT);
        let regs = [(-100i64) as u64, 0x7ffd_0000, 0x80000 | 0x42, 0o644, 0, 0];
        let p = s.parameters(Some(257), &regs, Some((1, b"/etc/missing", false)));
        assert_eq!(p, "dfd=AT_FDCWD, filename=\"/etc/missing\", flags=0x80042, mode=0644");
        // An int's register with garbage in its upper half.
        let p = s.parameters(Some(257), &[0xdead_0000_0000_0003, 0, 0, 0, 0, 0], None);
        assert!(p.starts_with("dfd=3, filename=NULL"), "{p}");
        assert_eq!(quoted(b"a\"\n\x01", true), "\"a\\\"\\n\\x01\"...");
        // Unknown to the kernel: the six registers.
        assert_eq!(s.parameters(Some(9), &[1, 2, 3, 4, 5, 6], None), "0x1, 0x2, 0x3, 0x4, 0x5, 0x6");
    }
}
