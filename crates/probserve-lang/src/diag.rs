//! Compile-time diagnostics: source spans, line/column positions and rendered snippets.
//!
//! Every error the front end reports (lexing, parsing, semantic checks) is a
//! [`Diagnostic`] with a 1-based line and column, a message and a snippet that shows
//! the offending source line with carets under the offending text. [`Diagnostics`]
//! holds all errors of one compilation; its `Display` renders every one of them.

use std::fmt;

/// A byte range in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (byte offsets).
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// What kind of problem a diagnostic reports (stable, for tests and tooling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagKind {
    /// A character or literal the lexer does not accept.
    Lex,
    /// The token stream does not follow the grammar.
    Syntax,
    /// A name is used that is not declared (or not in scope).
    UndefinedName,
    /// A name is declared twice.
    Duplicate,
    /// An expression has the wrong type.
    TypeMismatch,
    /// A function or distribution is called with the wrong number of arguments.
    Arity,
    /// An unknown function or distribution.
    UnknownFunction,
    /// Something on the left of `~` that cannot be sampled or observed.
    BadTarget,
    /// A statement that is not allowed where it appears.
    Misplaced,
    /// Anything else the checker rejects.
    Invalid,
}

/// One compile-time error, positioned in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// What kind of problem this is.
    pub kind: DiagKind,
    /// 1-based line of the start of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the start of the offending text.
    pub column: usize,
    /// Human-readable message, without position.
    pub message: String,
    /// The offending source line with carets under the offending text.
    pub snippet: String,
    /// Byte span of the offending text.
    pub span: Span,
}

impl Diagnostic {
    /// Builds a diagnostic for `span` of `source`, computing line, column and snippet.
    pub fn new(kind: DiagKind, source: &str, span: Span, message: impl Into<String>) -> Self {
        let start = clamp_to_char_boundary(source, span.start);
        let end = clamp_to_char_boundary(source, span.end.max(start));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let text = source[line_start..line_end].trim_end_matches('\r');
        let caret_end = end.min(line_start + text.len()).max(start);
        let n_carets = source[start..caret_end].chars().count().max(1);
        // Keep tabs in the padding so the carets line up under the text.
        let pad: String = source[line_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let gutter = line.to_string();
        let blank = " ".repeat(gutter.len());
        let snippet = format!(
            "{blank} |\n{gutter} | {text}\n{blank} | {pad}{}",
            "^".repeat(n_carets)
        );
        Self {
            kind,
            line,
            column,
            message: message.into(),
            snippet,
            span,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error: {}\n --> line {}, column {}\n{}",
            self.message, self.line, self.column, self.snippet
        )
    }
}

/// All errors of one compilation, in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diagnostics {
    /// The errors, sorted by position (at most [`MAX_ERRORS`]).
    pub errors: Vec<Diagnostic>,
    /// How many further errors were found but not kept.
    pub more: usize,
}

impl Diagnostics {
    /// True when there are no errors.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Iterates over the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.errors.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{d}")?;
        }
        let n = self.errors.len() + self.more;
        write!(f, "{n} error{}", if n == 1 { "" } else { "s" })?;
        if self.more > 0 {
            write!(f, " ({} not shown)", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects diagnostics against one source text.
#[derive(Debug)]
pub(crate) struct Sink<'s> {
    source: &'s str,
    errors: Vec<Diagnostic>,
    dropped: usize,
}

/// At most this many diagnostics are kept; the rest are counted.
pub const MAX_ERRORS: usize = 100;

impl<'s> Sink<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        Self {
            source,
            errors: Vec::new(),
            dropped: 0,
        }
    }

    pub(crate) fn error(&mut self, kind: DiagKind, span: Span, message: impl Into<String>) {
        if self.errors.len() < MAX_ERRORS {
            self.errors
                .push(Diagnostic::new(kind, self.source, span, message));
        } else {
            self.dropped += 1;
        }
    }

    pub(crate) fn source(&self) -> &'s str {
        self.source
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Sorted, deduplicated (same position and message) diagnostics.
    pub(crate) fn finish(mut self) -> Diagnostics {
        self.errors.sort_by_key(|d| (d.span.start, d.span.end));
        self.errors
            .dedup_by(|a, b| a.span == b.span && a.message == b.message);
        Diagnostics {
            errors: self.errors,
            more: self.dropped,
        }
    }
}

fn clamp_to_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_and_caret() {
        let src = "model m {\n  x ~ normal(tmp, 1.0);\n}";
        let start = src.find("tmp").unwrap();
        let d = Diagnostic::new(
            DiagKind::UndefinedName,
            src,
            Span::new(start, start + 3),
            "undefined name `tmp`",
        );
        assert_eq!((d.line, d.column), (2, 14));
        assert_eq!(
            d.snippet,
            "  |\n2 |   x ~ normal(tmp, 1.0);\n  |              ^^^"
        );
    }

    #[test]
    fn span_at_end_of_input_is_safe() {
        let src = "ab\u{e9}";
        let d = Diagnostic::new(DiagKind::Syntax, src, Span::new(99, 120), "eof");
        assert_eq!(d.line, 1);
        assert_eq!(d.column, 4);
        let d = Diagnostic::new(DiagKind::Syntax, src, Span::new(3, 4), "mid-char");
        assert_eq!(d.column, 3);
    }
}
