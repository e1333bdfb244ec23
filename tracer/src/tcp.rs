//! TCP facts the kernel reports as numbers: socket states, segment flags,
//! congestion states. Names as `ss` and the kernel's own headers use them.

/// A socket's state (`enum` in include/net/tcp_states.h).
pub fn state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// The flags byte of a TCP header, `SYN|ACK`; empty when none is set.
pub fn flags_string(flags: u8) -> String {
    const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
    let set: Vec<&str> = (0..8).filter(|bit| flags & (1 << bit) != 0).map(|bit| NAMES[bit]).collect();
    set.join("|")
}

/// The congestion-avoidance state (`enum tcp_ca_state`): `Loss` after a
/// retransmission timeout, `Recovery` during fast retransmit.
pub fn ca_state_name(state: u8) -> &'static str {
    match state {
        0 => "Open",
        1 => "Disorder",
        2 => "CWR",
        3 => "Recovery",
        4 => "Loss",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_named_in_header_order() {
        assert_eq!(flags_string(0x12), "SYN|ACK");
        assert_eq!(flags_string(0x18), "PSH|ACK");
        assert_eq!(flags_string(0x04), "RST");
        assert_eq!(flags_string(0), "");
        assert_eq!(flags_string(0xff), "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR");
    }

    #[test]
    fn states_match_the_kernels_numbers() {
        assert_eq!(state_name(1), "ESTABLISHED");
        assert_eq!(state_name(10), "LISTEN");
        assert_eq!(state_name(99), "UNKNOWN");
        assert_eq!(ca_state_name(4), "Loss");
    }
}
