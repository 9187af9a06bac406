//! Lexer: source text to tokens, built on winnow.
//!
//! The lexer never fails as a whole: characters it does not understand become
//! [`Tok::Error`] tokens with a diagnostic, and lexing goes on, so that several
//! problems are reported at once.

use winnow::ascii::{digit0, digit1, multispace1};
use winnow::combinator::{alt, opt};
use winnow::prelude::*;
use winnow::token::{any, one_of, take_until, take_while};

use crate::diag::{DiagKind, Sink, Span};

/// A token kind. Identifier text is read back from the source through the span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tok {
    Ident,
    Int(i64),
    Real(f64),
    // Keywords.
    Model,
    Data,
    Let,
    For,
    In,
    If,
    Else,
    Output,
    Factor,
    True,
    False,
    // Punctuation.
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Semi,
    Comma,
    Colon,
    Tilde,
    Question,
    Assign,
    DotDot,
    // Operators.
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    AndAnd,
    OrOr,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    /// A character sequence that is not a token (already reported).
    Error,
    /// End of input (always the last token).
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Tok::Ident => "a name",
            Tok::Int(_) => "an integer",
            Tok::Real(_) => "a number",
            Tok::Model => "`model`",
            Tok::Data => "`data`",
            Tok::Let => "`let`",
            Tok::For => "`for`",
            Tok::In => "`in`",
            Tok::If => "`if`",
            Tok::Else => "`else`",
            Tok::Output => "`output`",
            Tok::Factor => "`factor`",
            Tok::True => "`true`",
            Tok::False => "`false`",
            Tok::LBrace => "`{`",
            Tok::RBrace => "`}`",
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::LBracket => "`[`",
            Tok::RBracket => "`]`",
            Tok::Semi => "`;`",
            Tok::Comma => "`,`",
            Tok::Colon => "`:`",
            Tok::Tilde => "`~`",
            Tok::Question => "`?`",
            Tok::Assign => "`=`",
            Tok::DotDot => "`..`",
            Tok::Plus => "`+`",
            Tok::Minus => "`-`",
            Tok::Star => "`*`",
            Tok::Slash => "`/`",
            Tok::Percent => "`%`",
            Tok::Bang => "`!`",
            Tok::AndAnd => "`&&`",
            Tok::OrOr => "`||`",
            Tok::EqEq => "`==`",
            Tok::NotEq => "`!=`",
            Tok::Lt => "`<`",
            Tok::Le => "`<=`",
            Tok::Gt => "`>`",
            Tok::Ge => "`>=`",
            Tok::Error => "an invalid token",
            Tok::Eof => "end of input",
        }
    }
}

/// A token with its position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) span: Span,
}

/// Splits `source` into tokens; the last token is always [`Tok::Eof`].
pub(crate) fn lex(source: &str, sink: &mut Sink<'_>) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(source.len() / 3 + 1);
    let mut input = source;
    loop {
        skip_trivia(&mut input, source, sink);
        let start = source.len() - input.len();
        // Out of budget: end the stream here (the caller answers the budget error).
        if input.is_empty() || sink.meter().tick() {
            tokens.push(Token {
                tok: Tok::Eof,
                span: Span::new(start, start),
            });
            return tokens;
        }
        let before = input;
        let tok = match token.parse_next(&mut input) {
            Ok(tok) => tok,
            Err(_) => {
                // Skip one character; `token` only fails on characters it does not know.
                let bad = before.chars().next().map_or(1, char::len_utf8);
                input = &before[bad.min(before.len())..];
                Lexed::Bad("unexpected character")
            }
        };
        let end = source.len() - input.len();
        let span = Span::new(start, end);
        let tok = match tok {
            Lexed::Tok(t) => t,
            Lexed::Word(w) => keyword(w),
            Lexed::Number(text) => number(text, span, sink),
            Lexed::Bad(msg) => {
                let text = &source[start..end];
                sink.error(
                    DiagKind::Lex,
                    span,
                    format!("{msg} `{}`", text.escape_debug()),
                );
                Tok::Error
            }
        };
        tokens.push(Token { tok, span });
    }
}

enum Lexed<'s> {
    Tok(Tok),
    Word(&'s str),
    Number(&'s str),
    Bad(&'static str),
}

fn skip_trivia(input: &mut &str, source: &str, sink: &mut Sink<'_>) {
    loop {
        let before = input.len();
        let _ = opt(multispace1::<_, ErrMode>).parse_next(input);
        if input.starts_with("//") {
            let end = input.find('\n').unwrap_or(input.len());
            *input = &input[end..];
        } else if input.starts_with("/*") {
            let start = source.len() - input.len();
            let mut rest = &input[2..];
            if take_until::<_, _, ErrMode>(0.., "*/")
                .parse_next(&mut rest)
                .is_ok()
            {
                *input = &rest[2..];
            } else {
                sink.error(
                    DiagKind::Lex,
                    Span::new(start, start + 2),
                    "unterminated block comment",
                );
                *input = "";
            }
        }
        if input.len() == before {
            return;
        }
    }
}

type ErrMode = winnow::error::ErrMode<winnow::error::ContextError>;

fn token<'s>(i: &mut &'s str) -> ModalResult<Lexed<'s>> {
    alt((
        word.map(Lexed::Word),
        number_text.map(Lexed::Number),
        two_char.map(Lexed::Tok),
        one_char.map(Lexed::Tok),
    ))
    .parse_next(i)
}

fn word<'s>(i: &mut &'s str) -> ModalResult<&'s str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_'),
    )
        .take()
        .parse_next(i)
}

/// `12`, `1.5`, `1e-3`, `2.5E+4`. A `.` only starts a fraction when a digit follows,
/// so that `0..n` lexes as `0`, `..`, `n`.
fn number_text<'s>(i: &mut &'s str) -> ModalResult<&'s str> {
    (
        digit1,
        opt(('.', digit1)),
        opt((one_of(['e', 'E']), opt(one_of(['+', '-'])), digit0)),
    )
        .take()
        .parse_next(i)
}

fn two_char(i: &mut &str) -> ModalResult<Tok> {
    alt((
        "..".value(Tok::DotDot),
        "&&".value(Tok::AndAnd),
        "||".value(Tok::OrOr),
        "==".value(Tok::EqEq),
        "!=".value(Tok::NotEq),
        "<=".value(Tok::Le),
        ">=".value(Tok::Ge),
    ))
    .parse_next(i)
}

fn one_char(i: &mut &str) -> ModalResult<Tok> {
    let c = any.parse_next(i)?;
    let tok = match c {
        '{' => Tok::LBrace,
        '}' => Tok::RBrace,
        '(' => Tok::LParen,
        ')' => Tok::RParen,
        '[' => Tok::LBracket,
        ']' => Tok::RBracket,
        ';' => Tok::Semi,
        ',' => Tok::Comma,
        ':' => Tok::Colon,
        '~' => Tok::Tilde,
        '?' => Tok::Question,
        '=' => Tok::Assign,
        '+' => Tok::Plus,
        '-' => Tok::Minus,
        '*' => Tok::Star,
        '/' => Tok::Slash,
        '%' => Tok::Percent,
        '!' => Tok::Bang,
        '<' => Tok::Lt,
        '>' => Tok::Gt,
        _ => return Err(winnow::error::ParserError::from_input(i)),
    };
    Ok(tok)
}

fn keyword(w: &str) -> Tok {
    match w {
        "model" => Tok::Model,
        "data" => Tok::Data,
        "let" => Tok::Let,
        "for" => Tok::For,
        "in" => Tok::In,
        "if" => Tok::If,
        "else" => Tok::Else,
        "output" => Tok::Output,
        "factor" => Tok::Factor,
        "true" => Tok::True,
        "false" => Tok::False,
        _ => Tok::Ident,
    }
}

fn number(text: &str, span: Span, sink: &mut Sink<'_>) -> Tok {
    let is_real = text.contains(['.', 'e', 'E']);
    if is_real {
        if text.ends_with(['e', 'E', '+', '-']) {
            sink.error(
                DiagKind::Lex,
                span,
                format!("malformed number `{text}`: missing exponent digits"),
            );
            return Tok::Error;
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Tok::Real(v),
            _ => {
                sink.error(
                    DiagKind::Lex,
                    span,
                    format!("number `{text}` is out of range"),
                );
                Tok::Error
            }
        }
    } else {
        match text.parse::<i64>() {
            Ok(v) if v.unsigned_abs() <= 1 << 53 => Tok::Int(v),
            _ => {
                sink.error(
                    DiagKind::Lex,
                    span,
                    format!("integer `{text}` is out of range (at most 2^53)"),
                );
                Tok::Error
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        let mut sink = Sink::new(src);
        lex(src, &mut sink).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn ranges_and_reals() {
        assert_eq!(
            kinds("0..n 1.5 2e3 x[i]"),
            vec![
                Tok::Int(0),
                Tok::DotDot,
                Tok::Ident,
                Tok::Real(1.5),
                Tok::Real(2000.0),
                Tok::Ident,
                Tok::LBracket,
                Tok::Ident,
                Tok::RBracket,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_and_bad_chars() {
        let src = "a // c\n /* b */ $ & b";
        let mut sink = Sink::new(src);
        let toks: Vec<Tok> = lex(src, &mut sink).into_iter().map(|t| t.tok).collect();
        assert_eq!(
            toks,
            vec![Tok::Ident, Tok::Error, Tok::Error, Tok::Ident, Tok::Eof]
        );
        assert_eq!(sink.finish().len(), 2);
    }
}
