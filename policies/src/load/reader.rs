//! Typed reading of a spanned TOML tree.
//!
//! [`Reader`] collects diagnostics instead of stopping at the first one, records
//! the span of every value it reads (so later semantic checks can point at the
//! right place), and [`TableReader::finish`] reports keys nobody asked for as
//! unknown, with a "did you mean" suggestion.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::diagnostic::{Diagnostic, Location, SourceFile};
use crate::suggest::did_you_mean;
use crate::units::{
    parse_bandwidth, parse_byte_size, parse_duration, parse_step_percent, Bandwidth, ByteSize, Dur, Step,
};

/// A spanned TOML value.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// Diagnostics and value spans gathered while reading one file.
pub(crate) struct Reader<'s> {
    pub src: &'s SourceFile,
    pub diagnostics: Vec<Diagnostic>,
    spans: HashMap<String, Range<usize>>,
}

impl<'s> Reader<'s> {
    pub fn new(src: &'s SourceFile) -> Self {
        Reader { src, diagnostics: Vec::new(), spans: HashMap::new() }
    }

    /// Records a problem at `span`.
    pub fn error(&mut self, span: Range<usize>, path: &str, message: String, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            location: Some(Location::of(self.src, span)),
            path: path.to_string(),
            message,
            hint,
        });
    }

    /// The span of the value at `path`, or of its nearest ancestor that is in
    /// the file (for defaulted keys), or the start of the file.
    pub fn span_of(&self, path: &str) -> Range<usize> {
        let mut p = path;
        loop {
            if let Some(span) = self.spans.get(p) {
                return span.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return 0..0,
            }
        }
    }

    /// Whether the file itself set the key at `path`.
    pub fn is_set(&self, path: &str) -> bool {
        self.spans.contains_key(path)
    }

    pub fn remember(&mut self, path: &str, span: Range<usize>) {
        self.spans.insert(path.to_string(), span);
    }
}

/// Describes a found value for messages: `"2"` (a string), `2` (an integer), a table...
pub(crate) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("the string \"{s}\""),
        DeValue::Integer(i) => format!("the integer {}", int_text(i.as_str(), i.radix())),
        DeValue::Float(f) => format!("the float {}", f.as_str()),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the datetime {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

fn int_text(digits: &str, radix: u32) -> String {
    match radix {
        16 => format!("0x{digits}"),
        8 => format!("0o{digits}"),
        2 => format!("0b{digits}"),
        _ => digits.to_string(),
    }
}

/// The integer a TOML integer denotes, if it fits in an i64.
pub(crate) fn int_value(v: &DeValue<'_>) -> Option<i64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// Records that the value `v` at `path` is unacceptable; returns `None` so
/// typed getters can end with it.
fn reject<T>(r: &mut Reader<'_>, v: &Value<'_>, path: &str, message: String, hint: impl Into<String>) -> Option<T> {
    r.error(v.span(), path, message, Some(hint.into()));
    None
}

/// A table being read: tracks which keys were asked for.
pub(crate) struct TableReader<'a, 'i> {
    table: &'a DeTable<'i>,
    /// Key path of this table, e.g. `service[0].scale_up` (empty at the top).
    pub path: String,
    /// Span of the table (its header, or the inline table).
    pub span: Range<usize>,
    known: Vec<&'static str>,
    any_key: bool,
}

impl<'a, 'i> TableReader<'a, 'i> {
    pub fn new(table: &'a DeTable<'i>, path: String, span: Range<usize>) -> Self {
        TableReader { table, path, span, known: Vec::new(), any_key: false }
    }

    /// The key path of `key` inside this table.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, if present; marks the key as known either way.
    pub fn get(&mut self, r: &mut Reader<'_>, key: &'static str) -> Option<&'a Value<'i>> {
        self.allow(key);
        let v = self.table.get(key)?;
        r.remember(&self.key_path(key), v.span());
        Some(v)
    }

    /// Marks `key` as known without reading it (read elsewhere).
    pub fn allow(&mut self, key: &'static str) {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
    }

    /// Accepts every key: for tables whose keys are names the user chooses.
    pub fn allow_any(&mut self) {
        self.any_key = true;
    }

    /// Reports every key of the table that was never asked for.
    pub fn finish(self, r: &mut Reader<'_>) {
        if self.any_key {
            return;
        }
        for (key, _) in self.table.iter() {
            let name: &str = key.get_ref();
            if self.known.contains(&name) {
                continue;
            }
            let place = if self.path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in `{}`", generic_path(&self.path))
            };
            let hint = match did_you_mean(name, &self.known) {
                Some(s) => format!("did you mean `{s}`? Keys allowed {place}: {}", self.known.join(", ")),
                None => format!("keys allowed {place}: {}", self.known.join(", ")),
            };
            r.error(key.span(), &self.key_path(name), format!("unknown key `{name}`"), Some(hint));
        }
    }

    /// A sub-table at `key` (a `[header]` table or an inline table).
    pub fn table(&mut self, r: &mut Reader<'_>, key: &'static str) -> Option<TableReader<'a, 'i>> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(TableReader::new(t, path, v.span())),
            other => reject(
                r,
                v,
                &path,
                format!("expected a table, found {}", describe(other)),
                format!("write `[{}]` on its own line, or an inline table `{key} = {{ ... }}`", generic_path(&path)),
            ),
        }
    }

    pub fn string(&mut self, r: &mut Reader<'_>, key: &'static str, what: &str) -> Option<String> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => reject(
                r,
                v,
                &path,
                format!("expected {what} (a string), found {}", describe(other)),
                "put the value in double quotes",
            ),
        }
    }

    pub fn boolean(&mut self, r: &mut Reader<'_>, key: &'static str) -> Option<bool> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => reject(
                r,
                v,
                &path,
                format!("expected true or false, found {}", describe(other)),
                "write true or false without quotes",
            ),
        }
    }

    /// A whole number in `min..=max`.
    pub fn integer(&mut self, r: &mut Reader<'_>, key: &'static str, min: u32, max: u32, hint: &str) -> Option<u32> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        let expected = format!("expected a whole number from {min} to {max}");
        match v.get_ref() {
            DeValue::Integer(_) => match int_value(v.get_ref()) {
                Some(n) if n >= i64::from(min) && n <= i64::from(max) => u32::try_from(n).ok(),
                _ => reject(r, v, &path, format!("{expected}, found {}", describe(v.get_ref())), hint),
            },
            DeValue::String(s) if s.trim().parse::<i64>().is_ok() => reject(
                r,
                v,
                &path,
                format!("{expected}, found {}", describe(v.get_ref())),
                format!("write the number without quotes: {key} = {}", s.trim()),
            ),
            other => reject(r, v, &path, format!("{expected}, found {}", describe(other)), hint),
        }
    }

    /// A positive number (integer or float) in `(0, max]`.
    pub fn positive_number(
        &mut self,
        r: &mut Reader<'_>,
        key: &'static str,
        max: f64,
        what: &str,
        hint: &str,
    ) -> Option<f64> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        let n = match v.get_ref() {
            DeValue::Integer(_) => int_value(v.get_ref()).map(|n| n as f64),
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() && n > 0.0 && n <= max => Some(n),
            _ => reject(
                r,
                v,
                &path,
                format!("expected {what} greater than 0 and at most {max}, found {}", describe(v.get_ref())),
                hint,
            ),
        }
    }

    /// A duration string within `min..=max`.
    pub fn duration(&mut self, r: &mut Reader<'_>, key: &'static str, min: Duration, max: Duration) -> Option<Dur> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        let range = format!("{}..{}", Dur(min), Dur(max));
        let parsed = match v.get_ref() {
            DeValue::String(s) => parse_duration(s),
            DeValue::Integer(_) => {
                let n = int_value(v.get_ref()).unwrap_or(0);
                r.error(
                    v.span(),
                    &path,
                    format!("expected a duration string such as \"2s\" or \"500ms\", found {}", describe(v.get_ref())),
                    Some(format!("durations need a unit: write {key} = \"{n}s\" or \"{n}ms\"")),
                );
                return None;
            }
            other => Err(format!("found {}", describe(other))),
        };
        match parsed {
            Ok(d) if d >= min && d <= max => Some(Dur(d)),
            Ok(d) => reject(
                r,
                v,
                &path,
                format!("expected a duration in {range}, found \"{}\"", Dur(d)),
                format!("choose a value from {range}"),
            ),
            Err(why) => {
                r.error(
                    v.span(),
                    &path,
                    format!("expected a duration such as \"2s\" or \"500ms\"; {why}"),
                    Some("units: ms, s, m, h; combine as \"1m30s\"".into()),
                );
                None
            }
        }
    }

    /// A byte size: an integer number of bytes or a string such as "64KiB".
    pub fn byte_size(&mut self, r: &mut Reader<'_>, key: &'static str, min: u64, max: u64) -> Option<ByteSize> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        let parsed = match v.get_ref() {
            DeValue::String(s) => parse_byte_size(s),
            DeValue::Integer(_) => match int_value(v.get_ref()) {
                Some(n) if n >= 0 => Ok(ByteSize(n as u64)),
                _ => Err(format!("found {}", describe(v.get_ref()))),
            },
            other => Err(format!("found {}", describe(other))),
        };
        let range = format!("{}..{}", ByteSize(min), ByteSize(max));
        match parsed {
            Ok(b) if b.0 >= min && b.0 <= max => Some(b),
            Ok(b) => reject(
                r,
                v,
                &path,
                format!("expected a size in {range}, found {b}"),
                format!("choose a value from {range}"),
            ),
            Err(why) => {
                r.error(
                    v.span(),
                    &path,
                    format!("expected a size such as \"64KiB\" or a number of bytes; {why}"),
                    Some("units: B, KiB, MiB, GiB".into()),
                );
                None
            }
        }
    }

    /// A bandwidth string such as "1Gbit".
    pub fn bandwidth(&mut self, r: &mut Reader<'_>, key: &'static str) -> Option<Bandwidth> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        let parsed = match v.get_ref() {
            DeValue::String(s) => parse_bandwidth(s),
            other => Err(format!("found {}", describe(other))),
        };
        match parsed {
            Ok(b) => Some(b),
            Err(why) => {
                r.error(
                    v.span(),
                    &path,
                    format!("expected a bandwidth such as \"1Gbit\" or \"100MB/s\"; {why}"),
                    Some("bandwidths are strings with a unit".into()),
                );
                None
            }
        }
    }

    /// A step: a count (`1`) or a percentage string (`"100%"`).
    pub fn step(&mut self, r: &mut Reader<'_>, key: &'static str, max_count: u32) -> Option<Step> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        let parsed = match v.get_ref() {
            DeValue::Integer(_) => match int_value(v.get_ref()) {
                Some(n) if n >= 1 && n <= i64::from(max_count) => Ok(Step::Count(n as u32)),
                _ => Err(format!("a count must be from 1 to {max_count}, found {}", describe(v.get_ref()))),
            },
            DeValue::String(s) => parse_step_percent(s),
            other => Err(format!("found {}", describe(other))),
        };
        match parsed {
            Ok(s) => Some(s),
            Err(why) => {
                r.error(
                    v.span(),
                    &path,
                    format!("expected a number of instances or a percentage such as \"100%\"; {why}"),
                    Some("write step = 1 (instances) or step = \"100%\" (of the current instances)".into()),
                );
                None
            }
        }
    }

    /// One of a fixed set of names.
    pub fn choice<T: Copy>(
        &mut self,
        r: &mut Reader<'_>,
        key: &'static str,
        choices: &[(&'static str, T)],
    ) -> Option<T> {
        let path = self.key_path(key);
        let v = self.get(r, key)?;
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let list = names.join(" | ");
        match v.get_ref() {
            DeValue::String(s) => {
                if let Some((_, t)) = choices.iter().find(|(n, _)| *n == s.as_ref()) {
                    return Some(*t);
                }
                let hint = match did_you_mean(s, &names) {
                    Some(best) => format!("did you mean \"{best}\"?"),
                    None => format!("choose one of: {list}"),
                };
                reject(r, v, &path, format!("expected one of {list}, found \"{s}\""), hint)
            }
            other => reject(
                r,
                v,
                &path,
                format!("expected one of {list} (a string), found {}", describe(other)),
                "put the value in double quotes",
            ),
        }
    }

    /// The underlying table, for keys with dynamic names (e.g. `connect`).
    pub fn entries(&self) -> impl Iterator<Item = (&'a Spanned<std::borrow::Cow<'i, str>>, &'a Value<'i>)> {
        self.table.iter()
    }
}

/// `service[3].scale_up` -> `service.scale_up`: the path as the docs name it.
pub(crate) fn generic_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}
