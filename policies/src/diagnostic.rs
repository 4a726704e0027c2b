//! Diagnostics: one problem in a policy file, with the place (file:line:col and
//! key path), what was expected, what was found, and a hint; rendered the way
//! rustc renders errors, with the offending line and a caret under the value.

use std::fmt;
use std::ops::Range;

/// A policy's text and the name it is reported under (usually its path).
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name shown in messages, e.g. `policies/examples/rubis.toml`.
    pub name: String,
    /// The whole text of the file.
    pub text: String,
}

impl SourceFile {
    /// Wraps a policy text with the name used in messages.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile { name: name.into(), text: text.into() }
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past
    /// the end or inside a character are clamped.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    /// The text of the 1-based line `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line.saturating_sub(1)).unwrap_or("").trim_end_matches('\r')
    }
}

/// Where a diagnostic points: a position in a file plus the underlined length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file's display name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// The line's text, for the snippet.
    pub line_text: String,
    /// How many characters to underline (at least 1).
    pub width: usize,
}

impl Location {
    /// Locates a byte range of `src`.
    pub fn of(src: &SourceFile, span: Range<usize>) -> Self {
        let (line, col) = src.line_col(span.start);
        let line_text = src.line_text(line).to_string();
        let end = span.end.max(span.start);
        let (end_line, end_col) = src.line_col(end);
        let width = if end_line == line {
            end_col.saturating_sub(col).max(1)
        } else {
            line_text.chars().count().saturating_sub(col - 1).max(1)
        };
        Location { file: src.name.clone(), line, col, line_text, width }
    }
}

/// One problem found in a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where: `None` only for problems that concern the file as a whole.
    pub location: Option<Location>,
    /// The key path, e.g. `service[0].scale_up.threshold_ms`; empty for syntax errors.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// The first line of the rendered message: `file:line:col: path: message`.
    pub fn headline(&self) -> String {
        let mut out = String::new();
        if let Some(loc) = &self.location {
            out.push_str(&format!("{}:{}:{}: ", loc.file, loc.line, loc.col));
        }
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.headline())?;
        if let Some(loc) = &self.location {
            let num = loc.line.to_string();
            let pad = " ".repeat(num.len());
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {}", loc.line_text)?;
            writeln!(f, "{pad} | {}{}", " ".repeat(loc.col.saturating_sub(1)), "^".repeat(loc.width))?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "  = hint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_in_characters() {
        let src = SourceFile::new("p.toml", "a = 1\nbé = \"x\"\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        let x = src.text.find("\"x\"").unwrap();
        assert_eq!(src.line_col(x), (2, 6));
        assert_eq!(src.line_col(9999), (3, 1));
    }

    #[test]
    fn renders_snippet_with_caret() {
        let src = SourceFile::new("p.toml", "[service]\nthreshold_ms = -5\n");
        let start = src.text.find("-5").unwrap();
        let d = Diagnostic {
            location: Some(Location::of(&src, start..start + 2)),
            path: "service[0].scale_up.threshold_ms".into(),
            message: "expected a positive number, found -5".into(),
            hint: Some("the default is 2000".into()),
        };
        let text = d.to_string();
        assert!(text.starts_with(
            "error: p.toml:2:16: service[0].scale_up.threshold_ms: expected a positive number, found -5\n"
        ));
        assert!(text.contains("2 | threshold_ms = -5\n  |                ^^\n"));
        assert!(text.ends_with("  = hint: the default is 2000\n"));
    }
}
