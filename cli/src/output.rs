//! Rendering for people: aligned tables, key/value blocks and short forms of
//! proto values (enum names, times, sizes). JSON rendering lives in [`crate::json`].

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use prost_types::Timestamp;

use crate::args::OutputFormat;

/// A table with aligned columns; the last column is not padded.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// Adds a row (missing cells are blank).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, header first.
    pub fn render(&self) -> String {
        let cols = self.headers.len().max(self.rows.iter().map(Vec::len).max().unwrap_or(0));
        let mut widths = vec![0usize; cols];
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in line.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = line.get(i).map(String::as_str).unwrap_or("");
                if i + 1 < cols {
                    let pad = width - cell.chars().count();
                    let _ = write!(text, "{cell}{:pad$}  ", "");
                } else {
                    text.push_str(cell);
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Key/value lines with aligned values.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in pairs {
        let _ = writeln!(out, "{:width$} {v}", format!("{k}:"));
    }
    out
}

/// Prints a value for programs (JSON or YAML) or calls `table` for people.
pub fn emit(format: OutputFormat, json: impl FnOnce() -> serde_json::Value, table: impl FnOnce() -> String) {
    match format {
        OutputFormat::Json | OutputFormat::Yaml => machine(format, &json(), Shape::Document),
        OutputFormat::Table => print!("{}", table()),
    }
}

/// How a value for programs is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A whole answer: pretty JSON, or a YAML document.
    Document,
    /// One of many (a stream's event, a list's item): a JSON line, or a `---` YAML document.
    Item,
}

/// Prints `v` as JSON or YAML (`format` must be one of them; tables print nothing here).
pub fn machine(format: OutputFormat, v: &serde_json::Value, shape: Shape) {
    match (format, shape) {
        (OutputFormat::Json, Shape::Document) => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        (OutputFormat::Json, Shape::Item) => println!("{}", serde_json::to_string(v).unwrap_or_default()),
        (OutputFormat::Yaml, _) => print!("---\n{}", serde_yaml_ng::to_string(v).unwrap_or_default()),
        (OutputFormat::Table, _) => {}
    }
}

/// A proto enum name without its prefix, lower-case, e.g. `NODE_STATUS_ACTIVE` → `active`.
pub fn short_enum(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_ascii_lowercase()
}

/// Short name of a proto enum value, via its `as_str_name` (or the number if unknown).
#[macro_export]
macro_rules! short {
    ($ty:ty, $v:expr, $prefix:expr) => {
        match <$ty>::try_from($v) {
            Ok(e) => $crate::output::short_enum(e.as_str_name(), $prefix),
            Err(_) => format!("{}", $v),
        }
    };
}

/// A timestamp as RFC 3339 (seconds), or `-`.
pub fn time(ts: Option<&Timestamp>) -> String {
    match ts.and_then(|t| SystemTime::try_from(*t).ok()) {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string(),
        None => "-".to_string(),
    }
}

/// How long ago a timestamp was, e.g. `3s ago`, or `-`.
pub fn age(ts: Option<&Timestamp>) -> String {
    let Some(t) = ts.and_then(|t| SystemTime::try_from(*t).ok()) else {
        return "-".to_string();
    };
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!("{} ago", duration(d)),
        Err(_) => "just now".to_string(),
    }
}

/// A duration, coarse: `950ms`, `12s`, `4m10s`, `3h2m`, `2d4h`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// CPU millis as cores, e.g. `2.5`.
pub fn cores(millis: u64) -> String {
    if millis.is_multiple_of(1000) { format!("{}", millis / 1000) } else { format!("{:.1}", millis as f64 / 1000.0) }
}

/// MiB as a short size, e.g. `512Mi`, `4Gi`, `1.5Gi`.
pub fn mib(mb: u64) -> String {
    if mb < 1024 {
        format!("{mb}Mi")
    } else if mb.is_multiple_of(1024) {
        format!("{}Gi", mb / 1024)
    } else {
        format!("{:.1}Gi", mb as f64 / 1024.0)
    }
}

/// A 0–1 share as a percentage, e.g. `42%`.
pub fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// Bytes as text for a terminal (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fog_proto::v1::NodeStatus;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["ID", "STATUS", "NOTE"]);
        t.row(vec!["a".into(), "active".into(), "x".into()]);
        t.row(vec!["longer-id".into(), "ü".into(), "".into()]);
        assert_eq!(t.render(), "ID         STATUS  NOTE\na          active  x\nlonger-id  ü\n");
    }

    #[test]
    fn short_forms() {
        assert_eq!(short!(NodeStatus, 1, "NODE_STATUS_"), "active");
        assert_eq!(short!(NodeStatus, 99, "NODE_STATUS_"), "99");
        assert_eq!(cores(2500), "2.5");
        assert_eq!(cores(4000), "4");
        assert_eq!(mib(512), "512Mi");
        assert_eq!(mib(4096), "4Gi");
        assert_eq!(duration(Duration::from_secs(250)), "4m10s");
        assert_eq!(time(Some(&Timestamp { seconds: 0, nanos: 0 })), "1970-01-01T00:00:00Z");
        assert_eq!(time(None), "-");
    }

    #[test]
    fn key_values_align() {
        assert_eq!(key_values(&[("id", "n1".into()), ("status", "idle".into())]), "id:     n1\nstatus: idle\n");
    }
}
