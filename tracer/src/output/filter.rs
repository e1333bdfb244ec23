//! `-F/--filter col:value` in its forms: `col:value`, `col:!value`,
//! `col:>=v`, `col:>v`, `col:<=v`, `col:<v`, `col:~regex`, `col:!~regex`.
//! Numbers compare as numbers, text as text. All filters must match.

use std::cmp::Ordering;

use regex::Regex;

use super::{OutputError, find_column};
use crate::event::Value;
use crate::gadgets::Column;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("filter {0:?} has no ':' (use column:value)")]
    NoColon(String),
    #[error("filter {filter:?}")]
    Column {
        filter: String,
        #[source]
        source: OutputError,
    },
    #[error("filter {filter:?}: bad regular expression")]
    Regex {
        filter: String,
        #[source]
        source: regex::Error,
    },
}

#[derive(Debug)]
enum Op {
    Eq(String),
    Ne(String),
    Cmp(Ordering, bool, String), // ordering wanted, or-equal, operand
    Match(Regex, bool),          // regex, negated
}

#[derive(Debug)]
pub struct Filter {
    column: usize,
    op: Op,
}

impl Filter {
    pub fn parse<E>(spec: &str, columns: &[Column<E>]) -> Result<Self, FilterError> {
        let (name, rule) = spec.split_once(':').ok_or_else(|| FilterError::NoColon(spec.to_string()))?;
        let column = find_column(columns, name)
            .map_err(|source| FilterError::Column { filter: spec.to_string(), source })?;
        let regex = |pattern: &str| {
            Regex::new(pattern).map_err(|source| FilterError::Regex { filter: spec.to_string(), source })
        };
        let op = if let Some(p) = rule.strip_prefix("!~") {
            Op::Match(regex(p)?, true)
        } else if let Some(p) = rule.strip_prefix('~') {
            Op::Match(regex(p)?, false)
        } else if let Some(v) = rule.strip_prefix(">=") {
            Op::Cmp(Ordering::Greater, true, v.into())
        } else if let Some(v) = rule.strip_prefix("<=") {
            Op::Cmp(Ordering::Less, true, v.into())
        } else if let Some(v) = rule.strip_prefix('>') {
            Op::Cmp(Ordering::Greater, false, v.into())
        } else if let Some(v) = rule.strip_prefix('<') {
            Op::Cmp(Ordering::Less, false, v.into())
        } else if let Some(v) = rule.strip_prefix('!') {
            Op::Ne(v.into())
        } else {
            Op::Eq(rule.into())
        };
        Ok(Self { column, op })
    }

    pub fn matches<E>(&self, columns: &[Column<E>], event: &E) -> bool {
        let value = (columns[self.column].get)(event);
        match &self.op {
            Op::Eq(v) => equals(&value, v),
            Op::Ne(v) => !equals(&value, v),
            Op::Cmp(want, or_equal, v) => {
                let got = compare(&value, v);
                got == *want || (*or_equal && got == Ordering::Equal)
            }
            Op::Match(re, negated) => re.is_match(&value.to_text()) != *negated,
        }
    }
}

fn equals(value: &Value<'_>, operand: &str) -> bool {
    match (value, operand.parse::<i64>()) {
        (Value::Int(i), Ok(o)) => *i == o,
        _ => value.to_text() == operand,
    }
}

fn compare(value: &Value<'_>, operand: &str) -> Ordering {
    match (value, operand.parse::<i64>()) {
        (Value::Int(i), Ok(o)) => i.cmp(&o),
        _ => value.to_text().as_ref().cmp(operand),
    }
}

/// All filters of a run.
#[derive(Debug, Default)]
pub struct Filters(Vec<Filter>);

impl Filters {
    pub fn parse<E>(specs: &[String], columns: &[Column<E>]) -> Result<Self, FilterError> {
        specs.iter().map(|s| Filter::parse(s, columns)).collect::<Result<_, _>>().map(Self)
    }

    pub fn matches<E>(&self, columns: &[Column<E>], event: &E) -> bool {
        self.0.iter().all(|f| f.matches(columns, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ev {
        pid: u32,
        comm: &'static str,
    }

    fn cols() -> Vec<Column<Ev>> {
        vec![
            Column::new("pid", 7, |e: &Ev| Value::from(e.pid)),
            Column::new("comm", 16, |e: &Ev| Value::from(e.comm)),
        ]
    }

    fn check(spec: &str, e: &Ev) -> bool {
        let c = cols();
        Filter::parse(spec, &c).unwrap().matches(&c, e)
    }

    #[test]
    fn every_operator() {
        let e = Ev { pid: 42, comm: "cat" };
        assert!(check("pid:42", &e) && !check("pid:41", &e));
        assert!(check("pid:!41", &e) && !check("pid:!42", &e));
        assert!(check("pid:>=42", &e) && check("pid:>41", &e) && !check("pid:>42", &e));
        assert!(check("pid:<=42", &e) && check("pid:<43", &e) && !check("pid:<42", &e));
        // numbers compare as numbers, not as text ("100" < "42" as text)
        assert!(check("pid:<100", &e));
        assert!(check("comm:cat", &e) && check("COMM:~^c.t$", &e) && check("comm:!~^s", &e));
        assert!(!check("comm:~^s", &e));
    }

    #[test]
    fn errors_name_the_problem() {
        let c = cols();
        assert!(matches!(Filter::parse("pid", &c), Err(FilterError::NoColon(_))));
        assert!(matches!(Filter::parse("nope:1", &c), Err(FilterError::Column { .. })));
        assert!(matches!(Filter::parse("comm:~(", &c), Err(FilterError::Regex { .. })));
    }
}
