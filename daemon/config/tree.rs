//! A small spanned view of a parsed TOML document, and the collector of config problems.
//!
//! serde stops at the first bad key; a technician fixing a table at 3 a.m. wants every problem
//! in one run. So the file is parsed into this tree (every key and value keeps its byte span) and
//! the checks in `super::schema` walk it, recording each problem and going on.

use std::ops::Range;

use toml_edit::{Item, TableLike, Value};

use super::{ConfigIssue, Severity};

/// One TOML value with where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub span: Option<Range<usize>>,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float,
    Bool(bool),
    DateTime,
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// One `key = value` of a table.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Option<Range<usize>>,
    pub value: Node,
}

impl Kind {
    /// How the TOML type is named in an error message.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::DateTime => "a date-time",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }
}

pub(crate) fn from_item(item: &Item) -> Option<Node> {
    match item {
        Item::None => None,
        Item::Value(v) => Some(from_value(v)),
        Item::Table(t) => Some(from_table_like(t, t.span())),
        Item::ArrayOfTables(a) => Some(Node {
            span: a.span(),
            kind: Kind::Array(a.iter().map(|t| from_table_like(t, t.span())).collect()),
        }),
    }
}

fn from_value(v: &Value) -> Node {
    let span = v.span();
    let kind = match v {
        Value::String(s) => Kind::Str(s.value().clone()),
        Value::Integer(i) => Kind::Int(*i.value()),
        Value::Float(_) => Kind::Float,
        Value::Boolean(b) => Kind::Bool(*b.value()),
        Value::Datetime(_) => Kind::DateTime,
        Value::Array(a) => Kind::Array(a.iter().map(from_value).collect()),
        Value::InlineTable(t) => return from_table_like(t, span),
    };
    Node { span, kind }
}

fn from_table_like(t: &dyn TableLike, span: Option<Range<usize>>) -> Node {
    let mut entries = Vec::new();
    for (key, item) in t.iter() {
        let key_span = t.get_key_value(key).and_then(|(k, _)| k.span());
        if let Some(value) = from_item(item) {
            entries.push(Entry {
                key: key.to_owned(),
                key_span,
                value,
            });
        }
    }
    Node {
        span,
        kind: Kind::Table(entries),
    }
}

/// Collects problems while the schema walks the tree; turns byte spans into line/column.
#[derive(Debug)]
pub(crate) struct Checker<'s> {
    source: &'s str,
    pub issues: Vec<ConfigIssue>,
}

impl<'s> Checker<'s> {
    pub fn new(source: &'s str) -> Self {
        Self {
            source,
            issues: Vec::new(),
        }
    }

    pub fn line_col(&self, span: Option<&Range<usize>>) -> Option<(usize, usize)> {
        let start = span?.start.min(self.source.len());
        let before = self.source.get(..start)?;
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some((line, col))
    }

    pub fn error(
        &mut self,
        path: &str,
        span: Option<&Range<usize>>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Severity::Error, path, span, problem.into(), fix.into());
    }

    pub fn warning(
        &mut self,
        path: &str,
        span: Option<&Range<usize>>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Severity::Warning, path, span, problem.into(), fix.into());
    }

    fn push(
        &mut self,
        severity: Severity,
        path: &str,
        span: Option<&Range<usize>>,
        problem: String,
        fix: String,
    ) {
        let line_col = self.line_col(span);
        self.issues.push(ConfigIssue {
            severity,
            path: path.to_owned(),
            line: line_col.map(|(l, _)| l),
            column: line_col.map(|(_, c)| c),
            problem,
            fix,
        });
    }
}

/// The keys of one table, checked against the ones the schema knows.
///
/// Reading a key marks it as known; `finish` reports every key that was never read as unknown,
/// with the closest known key as a suggestion (a typo like `bet_windw` is the common case).
#[derive(Debug)]
pub(crate) struct Section<'a> {
    pub path: String,
    /// Where the table was written (its `[header]`), so a missing key can point at it.
    pub span: Option<Range<usize>>,
    entries: &'a [Entry],
    known: Vec<&'static str>,
}

impl<'a> Section<'a> {
    pub fn new(path: impl Into<String>, entries: &'a [Entry], span: Option<Range<usize>>) -> Self {
        Self {
            path: path.into(),
            span,
            entries,
            known: Vec::new(),
        }
    }

    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Marks `key` as known and returns its value if it was written.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Node> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    pub fn finish(self, checker: &mut Checker<'_>) {
        for entry in self.entries {
            if self.known.contains(&entry.key.as_str()) {
                continue;
            }
            let path = self.key_path(&entry.key);
            let fix = match closest(&entry.key, &self.known) {
                Some(near) => format!(
                    "did you mean `{near}`? Known keys here: {}",
                    self.known.join(", ")
                ),
                None if self.known.is_empty() => "remove it".to_owned(),
                None => format!("remove it; known keys here: {}", self.known.join(", ")),
            };
            checker.error(
                &path,
                entry.key_span.as_ref(),
                format!("unknown key `{}`", entry.key),
                fix,
            );
        }
    }
}

fn closest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key() {
        assert_eq!(
            closest("bet_windw", &["bet_window", "timecode_rate"]),
            Some("bet_window")
        );
        assert_eq!(closest("zzz", &["bet_window", "timecode_rate"]), None);
    }

    #[test]
    fn line_and_column_are_one_based() {
        let c = Checker::new("a = 1\nbb = 2\n");
        assert_eq!(c.line_col(Some(&(6..8))), Some((2, 1)));
        assert_eq!(c.line_col(Some(&(11..12))), Some((2, 6)));
    }
}
