//! Turning events into what the user reads: `-o columns|json|jsonpretty|yaml`,
//! column selection, `-F` filters, `--output-file`, and warnings such as
//! lost events.

pub mod columns;
pub mod file;
pub mod filter;
pub mod yaml;

use std::io::Write;

use serde::Serialize;

use crate::gadgets::Column;

/// The `-o/--output` choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputMode {
    /// A table; `None` uses the gadget's default columns.
    Columns(Option<ColumnSelection>),
    Json,
    JsonPretty,
    Yaml,
    /// Folded stacks, one line each (`frame;frame;... count`), the input of
    /// flame graph tools: `profile cpu` only.
    Folded,
}

/// How an output other than a table writes each event (or a snapshot's list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structured {
    /// One line each.
    Json,
    JsonPretty,
    /// One document each.
    Yaml,
}

impl Structured {
    pub fn write<E: Serialize>(self, out: &mut impl Write, item: &E) -> std::io::Result<()> {
        match self {
            Self::Json => write_json(out, item, false),
            Self::JsonPretty => write_json(out, item, true),
            Self::Yaml => yaml::write_yaml(out, item),
        }
    }
}

/// `-o columns=a,b` (exactly these) or `-o columns=+a,-b` (relative to the defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnSelection {
    Exactly(Vec<String>),
    Relative { add: Vec<String>, remove: Vec<String> },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutputError {
    #[error(
        "unknown output mode {0:?}: use columns, columns=a,b,c, json, jsonpretty or yaml (folded: profile cpu)"
    )]
    UnknownMode(String),
    #[error("-o folded: only profile cpu has stacks to fold")]
    NotFoldable,
    #[error("-o columns= mixes absolute names and +/- changes ({0:?}): use one or the other")]
    MixedSelection(String),
    #[error("unknown column {name:?}; available: {available}")]
    UnknownColumn { name: String, available: String },
}

impl OutputMode {
    pub fn parse(s: &str) -> Result<Self, OutputError> {
        match s {
            "columns" => return Ok(Self::Columns(None)),
            "json" => return Ok(Self::Json),
            "jsonpretty" => return Ok(Self::JsonPretty),
            "yaml" => return Ok(Self::Yaml),
            "folded" => return Ok(Self::Folded),
            _ => {}
        }
        let Some(list) = s.strip_prefix("columns=") else {
            return Err(OutputError::UnknownMode(s.to_string()));
        };
        ColumnSelection::parse(list).map(|sel| Self::Columns(Some(sel)))
    }

    /// Everything but `profile cpu` refuses `-o folded` with this, first.
    pub fn refuse_folded(&self) -> Result<(), OutputError> {
        match self {
            Self::Folded => Err(OutputError::NotFoldable),
            _ => Ok(()),
        }
    }

    /// None for a table (and for folded stacks, which the runners that
    /// call this have refused).
    pub fn structured(&self) -> Option<Structured> {
        match self {
            Self::Columns(_) | Self::Folded => None,
            Self::Json => Some(Structured::Json),
            Self::JsonPretty => Some(Structured::JsonPretty),
            Self::Yaml => Some(Structured::Yaml),
        }
    }
}

impl ColumnSelection {
    /// `a,b` (exactly these) or `+a,-b` (changes to the defaults), as after
    /// `-o columns=` or `--fields`.
    pub fn parse(list: &str) -> Result<Self, OutputError> {
        let names: Vec<&str> = list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        let relative = names.iter().filter(|n| n.starts_with(['+', '-'])).count();
        if relative == 0 {
            return Ok(Self::Exactly(names.iter().map(|n| n.to_string()).collect()));
        }
        if relative != names.len() {
            return Err(OutputError::MixedSelection(list.to_string()));
        }
        let pick = |sign: char| names.iter().filter_map(|n| n.strip_prefix(sign)).map(String::from).collect();
        Ok(Self::Relative { add: pick('+'), remove: pick('-') })
    }
}

/// Index of the column called `name` (case-insensitive), or an error listing them all.
pub fn find_column<E>(columns: &[Column<E>], name: &str) -> Result<usize, OutputError> {
    columns.iter().position(|c| c.name.eq_ignore_ascii_case(name)).ok_or_else(|| OutputError::UnknownColumn {
        name: name.to_string(),
        available: columns.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
    })
}

/// The indexes of the columns to show, in order.
pub fn select_columns<E>(
    columns: &[Column<E>],
    sel: Option<&ColumnSelection>,
) -> Result<Vec<usize>, OutputError> {
    let defaults = || (0..columns.len()).filter(|&i| columns[i].visible).collect::<Vec<_>>();
    match sel {
        None => Ok(defaults()),
        Some(ColumnSelection::Exactly(names)) => names.iter().map(|n| find_column(columns, n)).collect(),
        Some(ColumnSelection::Relative { add, remove }) => {
            let mut picked = defaults();
            for n in remove {
                let i = find_column(columns, n)?;
                picked.retain(|&p| p != i);
            }
            for n in add {
                let i = find_column(columns, n)?;
                if !picked.contains(&i) {
                    picked.push(i);
                }
            }
            Ok(picked)
        }
    }
}

/// Writes one event as a JSON line (or a pretty JSON object).
pub fn write_json<E: Serialize>(out: &mut impl Write, event: &E, pretty: bool) -> std::io::Result<()> {
    if pretty {
        serde_json::to_writer_pretty(&mut *out, event)?;
    } else {
        serde_json::to_writer(&mut *out, event)?;
    }
    out.write_all(b"\n")
}

/// A message event (`type` warn/err/info), as JSON consumers receive it.
#[derive(Serialize)]
pub struct MessageEvent<'a> {
    pub timestamp: u64,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub message: &'a str,
    #[serde(rename = "lostEvents", skip_serializing_if = "Option::is_none")]
    pub lost_events: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;

    fn cols() -> Vec<Column<u32>> {
        vec![
            Column::new("pid", 7, |e: &u32| Value::from(*e)),
            Column::new("comm", 16, |_: &u32| Value::from("x")),
            Column::new("uid", 7, |_: &u32| Value::from(0u32)).hidden(),
        ]
    }

    #[test]
    fn parses_modes() {
        assert_eq!(OutputMode::parse("json"), Ok(OutputMode::Json));
        assert_eq!(OutputMode::parse("columns"), Ok(OutputMode::Columns(None)));
        assert_eq!(
            OutputMode::parse("columns=pid,comm"),
            Ok(OutputMode::Columns(Some(ColumnSelection::Exactly(vec!["pid".into(), "comm".into()]))))
        );
        assert_eq!(OutputMode::parse("yaml"), Ok(OutputMode::Yaml));
        assert!(matches!(OutputMode::parse("xml"), Err(OutputError::UnknownMode(_))));
        assert!(matches!(OutputMode::parse("columns=pid,+uid"), Err(OutputError::MixedSelection(_))));
    }

    #[test]
    fn selects_relative_and_exact_columns() {
        let c = cols();
        assert_eq!(select_columns(&c, None).unwrap(), vec![0, 1]);
        let rel = ColumnSelection::Relative { add: vec!["UID".into()], remove: vec!["comm".into()] };
        assert_eq!(select_columns(&c, Some(&rel)).unwrap(), vec![0, 2]);
        let exact = ColumnSelection::Exactly(vec!["uid".into(), "pid".into()]);
        assert_eq!(select_columns(&c, Some(&exact)).unwrap(), vec![2, 0]);
        let bad = ColumnSelection::Exactly(vec!["nope".into()]);
        let err = select_columns(&c, Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("pid, comm, uid"), "{err}");
    }
}
