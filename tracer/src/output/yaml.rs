//! `-o yaml`: the JSON an event serializes to, written as block YAML, one
//! document per event (a list for snapshots). Strings that could read as
//! anything but themselves (numbers, booleans, null, YAML syntax, control
//! characters, non-ASCII) are double-quoted with JSON's escapes, which YAML's
//! double-quoted style shares: the output reads back as the same JSON.

use serde::Serialize;
use serde_json::Value;

/// One YAML document (`---` first) holding `value`.
pub fn write_yaml<E: Serialize>(out: &mut impl std::io::Write, value: &E) -> std::io::Result<()> {
    let value = serde_json::to_value(value).map_err(std::io::Error::other)?;
    let mut text = String::from("---\n");
    match &value {
        Value::Object(m) if !m.is_empty() => mapping(&mut text, m, 0, false),
        Value::Array(a) if !a.is_empty() => sequence(&mut text, a, 0),
        other => {
            scalar(&mut text, other);
            text.push('\n');
        }
    }
    out.write_all(text.as_bytes())
}

/// `in_item`: the mapping is a list item, its first key on the `- ` line.
fn mapping(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize, in_item: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !in_item {
            out.extend(std::iter::repeat_n(' ', indent));
        }
        string(out, k);
        out.push(':');
        value_after_key(out, v, indent);
    }
}

fn sequence(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        out.extend(std::iter::repeat_n(' ', indent));
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => mapping(out, m, indent + 2, true),
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                sequence(out, items, indent + 2);
            }
            other => {
                scalar(out, other);
                out.push('\n');
            }
        }
    }
}

fn value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent + 2, false);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            sequence(out, a, indent + 2);
        }
        other => {
            out.push(' ');
            scalar(out, other);
            out.push('\n');
        }
    }
}

fn scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn string(out: &mut String, s: &str) {
    if plain_is_safe(s) {
        out.push_str(s);
        return;
    }
    // Double-quoted: the escapes JSON and YAML share, and \uXXXX for every
    // character YAML does not allow in a stream (C0 and C1 controls, DEL,
    // U+FFFE, U+FFFF), which JSON would leave raw.
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if yaml_printable(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
    }
    out.push('"');
}

/// YAML 1.2's printable characters (c-printable), less NEL, which some
/// readers take for a line break.
fn yaml_printable(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Whether `s` written bare reads back as this string: letters, digits and
/// a few marks, starting with a letter or `/`, and no word YAML 1.1 or 1.2
/// would take for a boolean or null.
fn plain_is_safe(s: &str) -> bool {
    const WORDS: [&str; 11] = ["true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf"];
    let Some(first) = s.chars().next() else { return false };
    (first.is_ascii_alphabetic() || first == '/')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && !WORDS.contains(&s.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(v: &Value) -> String {
        let mut out = Vec::new();
        write_yaml(&mut out, v).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_event_is_one_block_document() {
        let v = json!({"pid": 7, "comm": "cat", "args": ["/bin/cat", "a b"], "k8s": {"podLabels": {}, "ns": ""},
                       "ok": true, "n": null, "nested": [{"a": 1, "b": [1, 2]}, []]});
        assert_eq!(
            yaml(&v),
            "---\npid: 7\ncomm: cat\nargs:\n  - /bin/cat\n  - \"a b\"\nk8s:\n  podLabels: {}\n  ns: \"\"\n\
             ok: true\n\"n\": null\nnested:\n  - a: 1\n    b:\n      - 1\n      - 2\n  - []\n"
        );
    }

    #[test]
    fn strings_that_would_read_as_something_else_are_quoted() {
        for s in ["true", "No", "null", "1.5", "0x1f", "-", "a: b", "#x", "x\ny", "\u{1b}[31m", "é", "", " a"]
        {
            let out = yaml(&json!({ "k": s }));
            let quoted = serde_json::to_string(s).unwrap();
            assert_eq!(out, format!("---\nk: {quoted}\n"), "{s:?}");
        }
        // What JSON leaves raw and YAML forbids.
        assert_eq!(
            yaml(&json!({"k": "a\u{9b}b\u{7f}\u{85}\u{fffe}"})),
            "---\nk: \"a\\u009bb\\u007f\\u0085\\ufffe\"\n"
        );
        assert_eq!(
            yaml(&json!({"path": "/etc/passwd", "name": "ig-test.x_1"})),
            "---\npath: /etc/passwd\nname: ig-test.x_1\n"
        );
    }
}
