//! Folded stacks (`root;...;leaf count`) and the SVG flame graph drawn from
//! them: each frame a box as wide as its share of the samples, callers
//! below their callees, siblings in name order (the x axis is not time).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One stack, root first, and how many samples it had.
pub type Folded = (Vec<String>, u64);

/// Identical stacks summed, in name order: the lines of `-o folded`.
pub fn merge(stacks: impl IntoIterator<Item = Folded>) -> Vec<Folded> {
    let mut all: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for (frames, n) in stacks {
        *all.entry(frames).or_default() += n;
    }
    all.into_iter().collect()
}

/// `a;b;c 12`. A `;` inside a name would split it: it becomes `:`.
pub fn folded_line((frames, count): &Folded) -> String {
    let names: Vec<String> = frames.iter().map(|f| f.replace(';', ":")).collect();
    format!("{} {count}", names.join(";"))
}

#[derive(Default)]
struct Node {
    count: u64,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn add(&mut self, frames: &[String], n: u64) {
        self.count += n;
        if let Some((first, rest)) = frames.split_first() {
            self.children.entry(first.clone()).or_default().add(rest, n);
        }
    }

    fn depth(&self) -> usize {
        self.children.values().map(|c| 1 + c.depth()).max().unwrap_or(0)
    }
}

const WIDTH: f64 = 1200.0;
const MARGIN: f64 = 10.0;
const FRAME_HEIGHT: f64 = 16.0;
const TITLE_HEIGHT: f64 = 40.0;
/// Boxes narrower than this are not drawn (their samples still count in their callers').
const MIN_WIDTH: f64 = 0.1;
/// Roughly, at font-size 12.
const CHAR_WIDTH: f64 = 7.0;

/// The flame graph of these stacks as an SVG document.
pub fn svg(title: &str, stacks: &[Folded]) -> String {
    let mut root = Node::default();
    for (frames, n) in stacks {
        root.add(frames, *n);
    }
    let depth = root.depth();
    let height = TITLE_HEIGHT + (depth as f64 + 1.0) * FRAME_HEIGHT + MARGIN;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">
<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#f8f8f0"/>
<text x="{}" y="24" font-size="17" font-family="Verdana,sans-serif" text-anchor="middle">{}</text>"##,
        WIDTH / 2.0,
        escape(title)
    );
    let total = root.count.max(1) as f64;
    let scale = (WIDTH - 2.0 * MARGIN) / total;
    let bottom = height - MARGIN - FRAME_HEIGHT;
    let all = format!("all ({} samples)", root.count);
    draw(&mut out, &all, &root, MARGIN, bottom, scale, total);
    out.push_str("</svg>\n");
    out
}

/// Draws `node` at (x, y), then its callees above it.
fn draw(out: &mut String, name: &str, node: &Node, x: f64, y: f64, scale: f64, total: f64) {
    let width = node.count as f64 * scale;
    if width < MIN_WIDTH {
        return;
    }
    let share = 100.0 * node.count as f64 / total;
    let fits = ((width - 6.0) / CHAR_WIDTH).floor().max(0.0) as usize;
    let label = if name.chars().count() <= fits {
        name.to_string()
    } else if fits > 2 {
        format!("{}..", name.chars().take(fits - 2).collect::<String>())
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        r#"<g><title>{} ({} samples, {share:.2}%)</title><rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{}" fill="{}" rx="2"/><text x="{:.1}" y="{:.1}" font-size="12" font-family="Verdana,sans-serif">{}</text></g>"#,
        escape(name),
        node.count,
        FRAME_HEIGHT - 1.0,
        color(name),
        x + 3.0,
        y + FRAME_HEIGHT - 4.0,
        escape(&label)
    );
    let mut child_x = x;
    for (child_name, child) in &node.children {
        draw(out, child_name, child, child_x, y - FRAME_HEIGHT, scale, total);
        child_x += child.count as f64 * scale;
    }
}

/// Warm colours, the same for the same name; kernel frames (`_[k]`) orange.
fn color(name: &str) -> String {
    let hash = name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let (r, g, b) = if name.ends_with("_[k]") {
        (230 + hash % 25, 120 + (hash >> 8) % 60, 30 + (hash >> 16) % 30)
    } else {
        (205 + hash % 50, 60 + (hash >> 8) % 150, 40 + (hash >> 16) % 40)
    };
    format!("rgb({r},{g},{b})")
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(frames: &[&str], n: u64) -> Folded {
        (frames.iter().map(|f| f.to_string()).collect(), n)
    }

    #[test]
    fn identical_stacks_are_summed_into_one_folded_line() {
        let merged = merge([
            stack(&["spin", "main", "leaf"], 3),
            stack(&["sh", "x"], 1),
            stack(&["spin", "main", "leaf"], 4),
        ]);
        let lines: Vec<String> = merged.iter().map(folded_line).collect();
        assert_eq!(lines, ["sh;x 1", "spin;main;leaf 7"]);
        assert_eq!(folded_line(&stack(&["a;b", "c"], 2)), "a:b;c 2");
    }

    #[test]
    fn boxes_are_as_wide_as_their_share_and_names_are_escaped() {
        let stacks = [stack(&["spin", "busy<T>"], 3), stack(&["spin", "idle"], 1)];
        let doc = svg("t & t", &stacks);
        assert!(doc.contains("<text x=\"600\" y=\"24\""), "{doc}");
        assert!(doc.contains("t &amp; t"), "{doc}");
        let rect_width = |title: &str| -> f64 {
            let at = doc.find(&format!("<title>{title}")).unwrap_or_else(|| panic!("no {title} in {doc}"));
            let rest = &doc[at..];
            let w = &rest[rest.find("width=\"").unwrap() + 7..];
            w[..w.find('"').unwrap()].parse().unwrap()
        };
        let all = rect_width("all (4 samples)");
        assert!((all - 1180.0).abs() < 0.2, "{all}");
        assert!((rect_width("busy&lt;T&gt; (3 samples, 75.00%)") - 885.0).abs() < 0.2);
        assert!((rect_width("idle (1 samples, 25.00%)") - 295.0).abs() < 0.2);
        assert!((rect_width("spin (4 samples, 100.00%)") - 1180.0).abs() < 0.2);
    }
}
