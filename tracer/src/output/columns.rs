//! The table printer. Widths start at each column's default and grow (up to
//! the column's maximum) as longer values arrive; longer values are cut with
//! an ellipsis. The last column takes the rest of the terminal, or everything
//! when the output is not a terminal. Control characters are escaped, so a
//! process name cannot inject terminal escapes.

use std::borrow::Cow;
use std::io::Write;

use crate::gadgets::{Align, Column};

pub struct ColumnsPrinter<E> {
    columns: Vec<Column<E>>,
    shown: Vec<usize>,
    widths: Vec<usize>,
    terminal_width: Option<usize>,
}

impl<E> ColumnsPrinter<E> {
    /// `shown` indexes `columns`; `terminal_width` is None when not printing to a terminal.
    pub fn new(columns: Vec<Column<E>>, shown: Vec<usize>, terminal_width: Option<usize>) -> Self {
        let widths = shown.iter().map(|&i| columns[i].width.max(columns[i].name.len())).collect();
        Self { columns, shown, widths, terminal_width }
    }

    pub fn write_header(&self, out: &mut impl Write) -> std::io::Result<()> {
        let cells: Vec<String> = self.shown.iter().map(|&i| self.columns[i].name.to_uppercase()).collect();
        self.write_cells(out, cells.iter().map(|c| Cow::Borrowed(c.as_str())).collect())
    }

    pub fn write_row(&mut self, out: &mut impl Write, event: &E) -> std::io::Result<()> {
        let mut cells = Vec::with_capacity(self.shown.len());
        for (slot, &i) in self.shown.iter().enumerate() {
            let col = &self.columns[i];
            let value = (col.get)(event);
            let text = escape_control(value.to_text());
            let len = text.chars().count();
            let limit = if col.max_width == 0 { usize::MAX } else { col.max_width.max(col.name.len()) };
            if len > self.widths[slot] {
                self.widths[slot] = len.min(limit);
            }
            cells.push(Cow::Owned(text.into_owned()));
        }
        self.write_cells(out, cells)
    }

    fn write_cells(&self, out: &mut impl Write, cells: Vec<Cow<'_, str>>) -> std::io::Result<()> {
        let mut line = String::new();
        let last = cells.len().saturating_sub(1);
        for (slot, cell) in cells.iter().enumerate() {
            if slot == last {
                let room = self.terminal_width.map(|w| w.saturating_sub(line.chars().count()).max(8));
                let max = self.max_of(slot);
                let room = match (room, max) {
                    (Some(r), Some(m)) => Some(r.min(m)),
                    (r, m) => r.or(m),
                };
                line.push_str(&fit(cell, room.unwrap_or(usize::MAX)));
            } else {
                let width = self.widths[slot];
                let cell = fit(cell, width);
                let pad = width.saturating_sub(cell.chars().count());
                match self.columns[self.shown[slot]].align {
                    Align::Left => {
                        line.push_str(&cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(&cell);
                    }
                }
                line.push(' ');
            }
        }
        line.truncate(line.trim_end().len());
        line.push('\n');
        out.write_all(line.as_bytes())
    }

    fn max_of(&self, slot: usize) -> Option<usize> {
        let col = &self.columns[self.shown[slot]];
        (col.max_width != 0).then(|| self.widths[slot])
    }
}

/// Cuts `s` to `width` characters, ending with an ellipsis when cut.
pub fn fit(s: &str, width: usize) -> Cow<'_, str> {
    if s.chars().count() <= width {
        return Cow::Borrowed(s);
    }
    if width == 0 {
        return Cow::Borrowed("");
    }
    let mut cut: String = s.chars().take(width - 1).collect();
    cut.push('…');
    Cow::Owned(cut)
}

/// Replaces control characters (C0, DEL, C1) with visible escapes.
pub fn escape_control(s: Cow<'_, str>) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Width of the terminal on stdout, or None when stdout is not a terminal.
pub fn stdout_terminal_width() -> Option<usize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a winsize into the pointer we pass; fd 1 may be anything.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;

    struct Ev {
        pid: u32,
        comm: String,
        args: Vec<String>,
    }

    fn printer(term: Option<usize>) -> ColumnsPrinter<Ev> {
        let cols = vec![
            Column::new("pid", 5, |e: &Ev| Value::from(e.pid)),
            Column::new("comm", 8, |e: &Ev| Value::from(e.comm.as_str())).max(10),
            Column::new("args", 10, |e: &Ev| Value::List(&e.args)).max(0),
        ];
        ColumnsPrinter::new(cols, vec![0, 1, 2], term)
    }

    fn render(p: &mut ColumnsPrinter<Ev>, e: &Ev) -> String {
        let mut out = Vec::new();
        p.write_row(&mut out, e).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_control_characters() {
        let mut p = printer(None);
        let e = Ev { pid: 1, comm: "ev\x1b[31mil".into(), args: vec!["a\nb".into()] };
        let line = render(&mut p, &e);
        assert!(!line[..line.len() - 1].chars().any(char::is_control), "{line:?}");
        assert!(line.contains("ev\\x1b[31…"), "{line:?}");
        assert!(line.contains("a\\nb"), "{line:?}");
    }

    #[test]
    fn widths_grow_up_to_the_maximum_then_cut_with_ellipsis() {
        let mut p = printer(None);
        let mut header = Vec::new();
        p.write_header(&mut header).unwrap();
        assert_eq!(String::from_utf8(header).unwrap(), "PID   COMM     ARGS\n");
        let short = Ev { pid: 7, comm: "sh".into(), args: vec!["/bin/sh".into()] };
        assert_eq!(render(&mut p, &short), "7     sh       /bin/sh\n");
        let long = Ev { pid: 8, comm: "averyveryverylongname".into(), args: vec!["x".into()] };
        assert_eq!(render(&mut p, &long), "8     averyvery… x\n");
        // The column stays at its grown width for the following rows.
        assert_eq!(render(&mut p, &short), "7     sh         /bin/sh\n");
    }

    #[test]
    fn last_column_fits_the_terminal() {
        let mut p = printer(Some(24));
        let e = Ev { pid: 1, comm: "cat".into(), args: vec!["cat".into(), "/a/very/long/path/name".into()] };
        let line = render(&mut p, &e);
        assert_eq!(line.trim_end().chars().count(), 24, "{line:?}");
        assert!(line.trim_end().ends_with('…'));
        let mut wide = printer(None);
        assert!(render(&mut wide, &e).contains("/a/very/long/path/name"));
    }
}
