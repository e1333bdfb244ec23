//! The names of the kernel's drop reasons (`enum skb_drop_reason`). Their
//! numbers change between kernel versions, so they are read from the
//! running kernel: the kfree_skb tracepoint's format prints the reason
//! with `__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, ...)`.

use std::collections::HashMap;
use std::path::Path;

/// Reason number to name, as the running kernel numbers them.
#[derive(Debug, Default)]
pub struct DropReasons(HashMap<u32, String>);

impl DropReasons {
    /// From the tracepoint's format in tracefs (empty when the kernel gives
    /// no reasons: before Linux 5.17).
    pub fn load() -> Self {
        for tracefs in [crate::kernel::TRACEFS, crate::kernel::TRACEFS_LEGACY] {
            let format = Path::new(tracefs).join("events/skb/kfree_skb/format");
            if let Ok(text) = std::fs::read_to_string(format) {
                return Self::parse(&text);
            }
        }
        Self::default()
    }

    /// Reads the `{ N, "NAME" }` pairs of the reason's `__print_symbolic`.
    pub fn parse(format: &str) -> Self {
        let mut map = HashMap::new();
        let Some(start) = format.find("__print_symbolic(REC->reason") else {
            return Self(map);
        };
        let mut rest = &format[start..];
        while let Some(open) = rest.find('{') {
            rest = &rest[open + 1..];
            let Some(close) = rest.find('}') else { break };
            let pair = &rest[..close];
            rest = &rest[close + 1..];
            let Some((num, name)) = pair.split_once(',') else { continue };
            let (Ok(num), name) = (num.trim().parse::<u32>(), name.trim().trim_matches('"')) else {
                continue;
            };
            map.insert(num, name.to_string());
            // The reason's list is the last argument of the format.
            if rest.trim_start().starts_with(')') {
                break;
            }
        }
        Self(map)
    }

    /// The name of `reason`; empty for 0 (no reason given), the number when
    /// the kernel did not name it.
    pub fn name(&self, reason: u32) -> String {
        match (reason, self.0.get(&reason)) {
            (0, _) => String::new(),
            (_, Some(name)) => name.clone(),
            (n, None) => format!("REASON_{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_come_from_the_tracepoint_format() {
        let fmt = r#"print fmt: "skbaddr=%p rx_sk=%p protocol=%u location=%pS reason: %s", REC->skbaddr, REC->rx_sk, REC->protocol, REC->location, __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, { 12, "NETFILTER_DROP" })"#;
        let r = DropReasons::parse(fmt);
        assert_eq!(r.name(3), "NO_SOCKET");
        assert_eq!(r.name(12), "NETFILTER_DROP");
        assert_eq!(r.name(0), "");
        assert_eq!(r.name(99), "REASON_99");
        // A kernel without reasons (5.10) prints none.
        let old =
            r#"print fmt: "skbaddr=%p protocol=%u location=%p", REC->skbaddr, REC->protocol, REC->location"#;
        assert_eq!(DropReasons::parse(old).name(3), "REASON_3");
    }
}
