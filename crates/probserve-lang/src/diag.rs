//! Compile-time diagnostics: source spans, line/column positions and rendered snippets.
//!
//! Every error the front end reports (lexing, parsing, semantic checks) is a
//! [`Diagnostic`] with a 1-based line and column, a message and a snippet that shows
//! the offending source line with carets under the offending text. [`Diagnostics`]
//! holds all errors of one compilation; its `Display` renders every one of them.

use std::fmt;

use crate::budget::{CompileBudget, Meter};

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
    ///
    /// This scans the source up to `span` for the line number; the compiler itself
    /// positions its diagnostics through a line index instead.
    pub fn new(kind: DiagKind, source: &str, span: Span, message: impl Into<String>) -> Self {
        let start = clamp_to_char_boundary(source, span.start);
        let line = source[..start].matches('\n').count() + 1;
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        Self::at_line(kind, source, span, line, line_start, message.into())
    }

    /// Builds a diagnostic whose start lies on line `line` (1-based), which begins at
    /// byte `line_start`. The snippet shows at most [`MAX_SNIPPET_CHARS`] characters
    /// of that line around the column (`…` marks what is cut), and the message is
    /// cut to [`MAX_MESSAGE_CHARS`], so a diagnostic's size does not depend on the
    /// length of the line or of the names in it.
    fn at_line(
        kind: DiagKind,
        source: &str,
        span: Span,
        line: usize,
        line_start: usize,
        message: String,
    ) -> Self {
        let start = clamp_to_char_boundary(source, span.start);
        let end = clamp_to_char_boundary(source, span.end.max(start));
        let line_start = line_start.min(start);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line_end = if source[line_start..line_end].ends_with('\r') {
            line_end - 1
        } else {
            line_end
        }
        .max(start);
        work(start - line_start + MAX_SNIPPET_CHARS);
        let column = source[line_start..start].chars().count() + 1;
        // The visible window: the whole line if it fits, else MAX_SNIPPET_CHARS around
        // the start, up to SNIPPET_BEFORE of them before it (more if the line ends
        // sooner).
        let after_avail = source[start..line_end]
            .chars()
            .take(MAX_SNIPPET_CHARS)
            .count();
        let before = SNIPPET_BEFORE.max(MAX_SNIPPET_CHARS - after_avail);
        let win_start = source[line_start..start]
            .char_indices()
            .rev()
            .take(before)
            .last()
            .map_or(start, |(i, _)| line_start + i);
        let shown_before = source[win_start..start].chars().count();
        let win_end = source[start..line_end]
            .char_indices()
            .nth(MAX_SNIPPET_CHARS - shown_before)
            .map_or(line_end, |(i, _)| start + i);
        let (lead, pad_lead) = if win_start > line_start {
            ("\u{2026}", " ")
        } else {
            ("", "")
        };
        let tail = if win_end < line_end { "\u{2026}" } else { "" };
        let text = &source[win_start..win_end];
        let caret_end = end.min(win_end).max(start);
        let n_carets = source[start..caret_end].chars().count().max(1);
        // Keep tabs in the padding so the carets line up under the text.
        let pad: String = source[win_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let gutter = line.to_string();
        let blank = " ".repeat(gutter.len());
        let snippet = format!(
            "{blank} |\n{gutter} | {lead}{text}{tail}\n{blank} | {pad_lead}{pad}{}",
            "^".repeat(n_carets)
        );
        Self {
            kind,
            line,
            column,
            message: truncate_chars(message, MAX_MESSAGE_CHARS),
            snippet,
            span,
        }
    }
}

/// A snippet shows at most this many characters of the offending line.
pub const MAX_SNIPPET_CHARS: usize = 160;

/// Characters of the line a snippet shows before the offending text, at most.
const SNIPPET_BEFORE: usize = 60;

/// A diagnostic's message is cut to this many characters (a name in it can be long).
pub const MAX_MESSAGE_CHARS: usize = 200;

/// `s` cut to at most `max` characters, the last of them `…` when something was cut.
fn truncate_chars(mut s: String, max: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max.saturating_sub(1))
        && s.len() > i + s[i..].chars().next().map_or(0, char::len_utf8)
    {
        s.truncate(i);
        s.push('\u{2026}');
    }
    s
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
            write!(
                f,
                " ({} not shown: compilation keeps the first {MAX_ERRORS})",
                self.more
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects diagnostics against one source text, and carries the compile budget's
/// meter through the phases.
///
/// It keeps the first [`MAX_ERRORS`] diagnostics and only counts the rest, so
/// neither the time nor the memory spent on errors grows with their number beyond
/// that; lines are found through an index of line starts built on the first error
/// (a binary search, not a scan of the source per diagnostic).
#[derive(Debug)]
pub(crate) struct Sink<'s> {
    source: &'s str,
    errors: Vec<Diagnostic>,
    dropped: usize,
    line_starts: std::cell::OnceCell<Vec<usize>>,
    meter: Meter<'s>,
}

/// At most this many diagnostics are kept; the rest are counted.
pub const MAX_ERRORS: usize = 50;

impl<'s> Sink<'s> {
    /// A sink without a budget.
    pub(crate) fn new(source: &'s str) -> Self {
        Self::with_meter(source, Meter::new(None))
    }

    /// A sink whose meter checks `budget`.
    pub(crate) fn with_budget(source: &'s str, budget: &'s CompileBudget) -> Self {
        Self::with_meter(source, Meter::new(Some(budget)))
    }

    fn with_meter(source: &'s str, meter: Meter<'s>) -> Self {
        Self {
            source,
            errors: Vec::new(),
            dropped: 0,
            line_starts: std::cell::OnceCell::new(),
            meter,
        }
    }

    pub(crate) fn error(&mut self, kind: DiagKind, span: Span, message: impl Into<String>) {
        if self.is_full() {
            self.dropped += 1;
            return;
        }
        let (line, line_start) = self.line_at(span.start);
        let message = message.into();
        self.errors.push(Diagnostic::at_line(
            kind,
            self.source,
            span,
            line,
            line_start,
            message,
        ));
    }

    /// True when further errors are only counted (so callers can skip work that only
    /// a kept diagnostic would show, such as a "did you mean" search).
    pub(crate) fn is_full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    /// The 1-based line containing byte `pos`, and the byte where that line starts.
    pub(crate) fn line_at(&self, pos: usize) -> (usize, usize) {
        let starts = self.line_starts.get_or_init(|| {
            work(self.source.len());
            std::iter::once(0)
                .chain(self.source.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        work(1);
        let line = starts.partition_point(|&s| s <= pos).max(1);
        (line, starts.get(line - 1).copied().unwrap_or(0))
    }

    /// The budget's meter (ticked in every phase's loops).
    pub(crate) fn meter(&self) -> &Meter<'s> {
        &self.meter
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Sorted, deduplicated (same position and message) diagnostics.
    pub(crate) fn finish(self) -> Diagnostics {
        self.split().0
    }

    /// [`Sink::finish`], and the meter.
    pub(crate) fn split(mut self) -> (Diagnostics, Meter<'s>) {
        self.errors.sort_by_key(|d| (d.span.start, d.span.end));
        self.errors
            .dedup_by(|a, b| a.span == b.span && a.message == b.message);
        (
            Diagnostics {
                errors: self.errors,
                more: self.dropped,
            },
            self.meter,
        )
    }
}

/// Counts work whose amount could grow with the number of errors (bytes scanned to
/// position and render a diagnostic, cells of "did you mean" searches), so a unit
/// test can check it grows linearly without timing anything. Free outside tests.
#[cfg(test)]
pub(crate) fn work(n: usize) {
    WORK.with(|w| w.set(w.get() + n as u64));
}

/// Counts work (see the test build's `work`); nothing outside tests.
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn work(_: usize) {}

#[cfg(test)]
thread_local! {
    static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The work counted on this thread so far.
#[cfg(test)]
pub(crate) fn work_done() -> u64 {
    WORK.with(std::cell::Cell::get)
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

    /// `n` statements, each sampling a new latent from an undefined name.
    fn undefined_names(n: usize, sep: &str) -> String {
        let mut s = String::from("model m {");
        for i in 0..n {
            s.push_str(&format!("{sep}x{i} ~ normal(u{i}, 1.0);"));
        }
        s.push_str(" }");
        s
    }

    #[test]
    fn errors_are_capped_and_counted() {
        let d = crate::compile(&undefined_names(500, "\n  ")).expect_err("errors");
        assert_eq!(d.len(), MAX_ERRORS);
        assert_eq!(d.more, 500 - MAX_ERRORS);
        assert!(d.to_string().ends_with(&format!(
            "500 errors ({} not shown: compilation keeps the first {MAX_ERRORS})",
            500 - MAX_ERRORS
        )));
    }

    #[test]
    fn work_per_error_does_not_grow_with_the_source() {
        // Each undefined name used to be compared with every latent declared before
        // it ("did you mean"), and each duplicate re-scanned the source for a line
        // number: work grew with errors × names. Counted, not timed.
        let work = |src: &str| {
            let before = work_done();
            let _ = crate::compile(src);
            work_done() - before
        };
        for sep in ["\n  ", " "] {
            let small = work(&undefined_names(1_000, sep));
            let large = work(&undefined_names(8_000, sep));
            assert!(
                large < small * 10,
                "8x the errors cost {large} work units against {small} (separator {sep:?})"
            );
        }
        let dups = |n: usize| {
            let mut s = String::from("model m {\n  data d: real;\n");
            s.push_str(&"  let d = 1.0;\n".repeat(n));
            s + "}"
        };
        let (small, large) = (work(&dups(1_000)), work(&dups(8_000)));
        assert!(large < small * 10, "duplicates: {large} against {small}");
    }

    #[test]
    fn snippets_and_messages_are_cut_around_the_column() {
        // One 200 KB line: the snippet shows a window around the error, the message
        // a bounded part of the 50 KB name.
        let long_name = "q".repeat(50_000);
        let src = format!(
            "model m {{ {} y ~ normal({long_name}, 1.0); {} }}",
            "factor(0.0); ".repeat(6_000),
            "factor(1.0); ".repeat(6_000)
        );
        let d = crate::compile(&src).expect_err("undefined");
        assert_eq!(d.len(), 1);
        let e = &d.errors[0];
        assert_eq!(e.line, 1);
        assert_eq!(e.column, src.find(&long_name).expect("name") + 1);
        assert!(
            e.message.chars().count() <= MAX_MESSAGE_CHARS,
            "{}",
            e.message
        );
        assert!(e.message.ends_with('\u{2026}'));
        let lines: Vec<&str> = e.snippet.lines().collect();
        assert_eq!(lines.len(), 3, "{}", e.snippet);
        let text = lines[1].trim_start_matches("1 | ");
        assert!(
            text.starts_with('\u{2026}') && text.ends_with('\u{2026}'),
            "{text}"
        );
        assert!(text.chars().count() <= MAX_SNIPPET_CHARS + 2, "{text}");
        assert!(text.contains("y ~ normal(qqq"), "{text}");
        // The carets start under the name.
        let carets = lines[2].trim_start_matches("  | ");
        let at = carets.find('^').expect("caret");
        assert_eq!(
            &text[text.char_indices().nth(at).expect("col").0..][..3],
            "qqq"
        );
        assert!(d.to_string().len() < 2_000, "{d}");
    }

    #[test]
    fn short_lines_and_messages_are_not_cut() {
        assert_eq!(truncate_chars("abc".into(), 3), "abc");
        assert_eq!(truncate_chars("abcd".into(), 3), "ab\u{2026}");
        assert_eq!(
            truncate_chars("\u{e9}\u{e9}\u{e9}\u{e9}".into(), 3),
            "\u{e9}\u{e9}\u{2026}"
        );
        let src = format!("{}\r\nxyz", "a".repeat(MAX_SNIPPET_CHARS));
        let d = Diagnostic::new(DiagKind::Syntax, &src, Span::new(3, 4), "m");
        assert_eq!(
            d.snippet.lines().nth(1),
            Some(&*format!("1 | {}", "a".repeat(MAX_SNIPPET_CHARS)))
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
