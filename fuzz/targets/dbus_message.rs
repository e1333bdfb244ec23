//! A message from systemd's private D-Bus socket, as `--auto-sd-unit-restart`
//! reads its replies: framing, header fields and body by signature.
#![no_main]

use tracer::dbus::wire;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(head) = data.get(..16).and_then(|h| <&[u8; 16]>::try_from(h).ok())
        && let Ok(len) = wire::frame_len(head)
    {
        assert!((16..=wire::MAX_MESSAGE).contains(&len));
    }
    if let Ok(msg) = wire::parse(data) {
        // What was read marshals back and reads again as the same values.
        let sig: String = msg.body.iter().map(wire::Value::signature).collect();
        let mut w = wire::Writer::default();
        for v in &msg.body {
            w.put(v);
        }
        let again = wire::Reader::new(&w.buf, 0, false).read_all(&sig).expect("our own bytes parse");
        assert_eq!(format!("{again:?}"), format!("{:?}", msg.body));
    }
});
