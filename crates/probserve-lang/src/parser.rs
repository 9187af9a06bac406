//! Parser: tokens to syntax tree, built on winnow over a token slice.
//!
//! Errors are recovered at statement level: a statement that fails to parse is
//! reported, the parser skips to the next `;` (or the end of the enclosing block)
//! and goes on, so one run reports every syntax error it can find. Nesting depth is
//! bounded so that hostile input cannot overflow the stack.

use std::cell::RefCell;

use winnow::combinator::{cut_err, separated};
use winnow::error::{ContextError, ErrMode, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::stream::{Stateful, TokenSlice};
use winnow::token::any;

use crate::ast::{
    BinOp, ElemTy, Expr, ExprKind, Ident, Program, SizeSpec, Stmt, StmtKind, Target, TypeSpec, UnOp,
};
use crate::budget::Meter;
use crate::diag::{DiagKind, Sink, Span};
use crate::lexer::{Tok, Token};

/// Deepest nesting of blocks and parenthesised expressions the parser accepts.
pub(crate) const MAX_DEPTH: usize = 64;

/// Tallest expression tree the parser builds (a chain `a + b + ...` counts one level
/// per operator).
pub(crate) const MAX_EXPR_DEPTH: usize = 256;

#[derive(Debug, Clone)]
struct State<'s, 'k> {
    src: &'s str,
    depth: usize,
    errors: &'k RefCell<Vec<(Span, String)>>,
    /// The compile budget: ticked per statement, argument and skipped token.
    meter: &'k Meter<'k>,
}

type In<'t, 's, 'k> = Stateful<TokenSlice<'t, Token>, State<'s, 'k>>;
type PResult<T> = ModalResult<T>;

/// Parses a token stream (ending in `Eof`) into a program. Returns `None` when not
/// even the `model name {` header could be read; all errors go to `sink`.
pub(crate) fn parse(source: &str, tokens: &[Token], sink: &mut Sink<'_>) -> Option<Program> {
    let errors = RefCell::new(Vec::new());
    let result = {
        let mut input = Stateful {
            input: TokenSlice::new(tokens),
            state: State {
                src: source,
                depth: 0,
                errors: &errors,
                meter: sink.meter(),
            },
        };
        program(&mut input)
    };
    for (span, msg) in errors.into_inner() {
        sink.error(DiagKind::Syntax, span, msg);
    }
    result
}

fn program(i: &mut In<'_, '_, '_>) -> Option<Program> {
    let header = (tok(Tok::Model), cut_err((ident, tok(Tok::LBrace)))).parse_next(i);
    let name = match header {
        Ok((_, (name, _))) => name,
        Err(e) => {
            let (span, msg) = describe(i, &e);
            error_at(i, span, msg);
            return None;
        }
    };
    let body = stmts(i);
    match peek(i).tok {
        Tok::RBrace => {
            let _ = any::<_, ContextError>.parse_next(i);
            let extra = peek(i);
            if extra.tok != Tok::Eof {
                error_at(i, extra.span, "unexpected text after the end of the model");
            }
        }
        _ => {
            let at = peek(i).span;
            error_at(i, at, "expected `}` to close the model, found end of input");
        }
    }
    Some(Program { name, body })
}

/// Statements until `}` or end of input (neither consumed), with error recovery.
fn stmts(i: &mut In<'_, '_, '_>) -> Vec<Stmt> {
    let mut out = Vec::new();
    loop {
        let start = peek(i);
        // Out of budget: stop here (the caller answers the budget error).
        if matches!(start.tok, Tok::RBrace | Tok::Eof) || i.state.meter.tick() {
            return out;
        }
        let snapshot = i.input;
        let rest: &[Token] = &snapshot;
        match stmt(i) {
            Ok(s) => out.push(s),
            Err(e) => {
                let (span, msg) = describe(i, &e);
                let before = rest.len();
                recover(i);
                let consumed = &rest[..before.saturating_sub(i.len()).max(1).min(before)];
                // A statement with an invalid token was already reported by the lexer.
                if !consumed.iter().any(|t| t.tok == Tok::Error) {
                    error_at(i, span, msg);
                }
                out.push(Stmt {
                    kind: StmtKind::Error,
                    span: start.span,
                });
            }
        }
    }
}

/// Skips to just after the next `;` or past a whole `{ ... }` block, or to a `}` that
/// closes the enclosing block (not consumed).
fn recover(i: &mut In<'_, '_, '_>) {
    let mut depth = 0usize;
    loop {
        if i.state.meter.tick() {
            return;
        }
        match peek(i).tok {
            Tok::Eof => return,
            Tok::RBrace if depth == 0 => return,
            Tok::RBrace => {
                depth -= 1;
                bump(i);
                if depth == 0 {
                    return;
                }
            }
            Tok::LBrace => {
                depth += 1;
                bump(i);
            }
            Tok::Semi if depth == 0 => {
                bump(i);
                return;
            }
            _ => bump(i),
        }
    }
}

fn stmt(i: &mut In<'_, '_, '_>) -> PResult<Stmt> {
    let first = peek(i);
    let kind = match first.tok {
        Tok::Data => {
            bump(i);
            let (name, _, ty, _) =
                cut_err((ident, tok(Tok::Colon), type_spec, tok(Tok::Semi))).parse_next(i)?;
            StmtKind::Data { name, ty }
        }
        Tok::Let => {
            bump(i);
            let (target, _, value, _) =
                cut_err((target, tok(Tok::Assign), expr, tok(Tok::Semi))).parse_next(i)?;
            StmtKind::Let { target, value }
        }
        Tok::Factor => {
            bump(i);
            let (_, e, _, _) = cut_err((tok(Tok::LParen), expr, tok(Tok::RParen), tok(Tok::Semi)))
                .parse_next(i)?;
            StmtKind::Factor(e)
        }
        Tok::Output => {
            bump(i);
            let names: Vec<Ident> =
                cut_err(separated(1.., ident, tok(Tok::Comma))).parse_next(i)?;
            cut_err(tok(Tok::Semi)).parse_next(i)?;
            StmtKind::Output(names)
        }
        Tok::If => return if_stmt(i),
        Tok::For => {
            bump(i);
            let (var, _, lo, _, hi) =
                cut_err((ident, tok(Tok::In), expr, tok(Tok::DotDot), expr)).parse_next(i)?;
            let body = block(i)?;
            StmtKind::For { var, lo, hi, body }
        }
        Tok::Ident => {
            let target = target(i)?;
            let (_, dist, _) = cut_err((
                tok(Tok::Tilde).context(expected("`~` (statements are `name ~ dist(...)`, `let`, `data`, `for`, `if`, `factor` or `output`)")),
                ident.context(expected("a distribution name")),
                tok(Tok::LParen),
            ))
            .parse_next(i)?;
            let args = cut_err(args).parse_next(i)?;
            cut_err(tok(Tok::Semi)).parse_next(i)?;
            StmtKind::Sample { target, dist, args }
        }
        _ => return Err(cut(expected("a statement"))),
    };
    Ok(Stmt {
        kind,
        span: first.span.to(prev_span(i)),
    })
}

fn if_stmt(i: &mut In<'_, '_, '_>) -> PResult<Stmt> {
    let first = peek(i);
    bump(i);
    let cond = cut_err(expr).parse_next(i)?;
    let then_body = block(i)?;
    let else_body = if peek(i).tok == Tok::Else {
        bump(i);
        if peek(i).tok == Tok::If {
            nested(i, |i| if_stmt(i).map(|s| vec![s]))?
        } else {
            block(i)?
        }
    } else {
        Vec::new()
    };
    Ok(Stmt {
        kind: StmtKind::If {
            cond,
            then_body,
            else_body,
        },
        span: first.span.to(prev_span(i)),
    })
}

/// `{ stmt* }`, recovering from errors inside.
fn block(i: &mut In<'_, '_, '_>) -> PResult<Vec<Stmt>> {
    cut_err(tok(Tok::LBrace)).parse_next(i)?;
    let body = nested(i, |i| Ok(stmts(i)))?;
    cut_err(tok(Tok::RBrace)).parse_next(i)?;
    Ok(body)
}

/// Runs `f` one nesting level deeper, failing cleanly past [`MAX_DEPTH`].
fn nested<'t, 's, 'k, T>(
    i: &mut In<'t, 's, 'k>,
    f: impl FnOnce(&mut In<'t, 's, 'k>) -> PResult<T>,
) -> PResult<T> {
    if i.state.depth >= MAX_DEPTH {
        return Err(cut(StrContext::Label("nesting: too deeply nested")));
    }
    i.state.depth += 1;
    let r = f(i);
    i.state.depth -= 1;
    r
}

fn type_spec(i: &mut In<'_, '_, '_>) -> PResult<TypeSpec> {
    let name = ident
        .context(expected(
            "a type (`real`, `int`, `bool`, `real[]`, `vector<real>`)",
        ))
        .parse_next(i)?;
    if name.name == "vector" {
        let (_, elem, _) = cut_err((tok(Tok::Lt), elem_ty, tok(Tok::Gt))).parse_next(i)?;
        return Ok(TypeSpec {
            elem,
            size: Some(SizeSpec::Any),
        });
    }
    let elem = elem_of(&name.name)
        .ok_or_else(|| cut(expected("`real`, `int`, `bool` or `vector<...>`")))?;
    let size = if peek(i).tok == Tok::LBracket {
        bump(i);
        let t = peek(i);
        let size = match t.tok {
            Tok::RBracket => SizeSpec::Any,
            Tok::Int(n) => {
                bump(i);
                SizeSpec::Fixed(n)
            }
            Tok::Ident => {
                let name = ident(i)?;
                if name.name == "len" && peek(i).tok == Tok::LParen {
                    bump(i);
                    let v = cut_err(ident).parse_next(i)?;
                    cut_err(tok(Tok::RParen)).parse_next(i)?;
                    SizeSpec::LenOf(v)
                } else {
                    SizeSpec::Named(name)
                }
            }
            _ => {
                return Err(cut(expected(
                    "a size (an integer or an `int` data name) or `]`",
                )));
            }
        };
        cut_err(tok(Tok::RBracket)).parse_next(i)?;
        Some(size)
    } else {
        None
    };
    Ok(TypeSpec { elem, size })
}

fn elem_ty(i: &mut In<'_, '_, '_>) -> PResult<ElemTy> {
    let name = ident.parse_next(i)?;
    elem_of(&name.name).ok_or_else(|| cut(expected("`real`, `int` or `bool`")))
}

fn elem_of(name: &str) -> Option<ElemTy> {
    match name {
        "real" => Some(ElemTy::Real),
        "int" => Some(ElemTy::Int),
        "bool" => Some(ElemTy::Bool),
        _ => None,
    }
}

fn target(i: &mut In<'_, '_, '_>) -> PResult<Target> {
    let name = ident.parse_next(i)?;
    let index = if peek(i).tok == Tok::LBracket {
        bump(i);
        let e = cut_err(expr).parse_next(i)?;
        cut_err(tok(Tok::RBracket)).parse_next(i)?;
        Some(e)
    } else {
        None
    };
    Ok(Target { name, index })
}

/// Call arguments after the `(`, through the `)`.
fn args(i: &mut In<'_, '_, '_>) -> PResult<Vec<Expr>> {
    if peek(i).tok == Tok::RParen {
        bump(i);
        return Ok(Vec::new());
    }
    let mut list = Vec::new();
    loop {
        if i.state.meter.tick() {
            return Err(cut(StrContext::Label("compile budget")));
        }
        list.push(cut_err(expr).parse_next(i)?);
        if peek(i).tok != Tok::Comma {
            break;
        }
        bump(i);
    }
    cut_err(tok(Tok::RParen))
        .context(expected("`,` or `)`"))
        .parse_next(i)?;
    Ok(list)
}

/// A full expression, including the conditional `c ? a : b`.
fn expr(i: &mut In<'_, '_, '_>) -> PResult<Expr> {
    nested(i, |i| {
        let cond = binary(i, 0)?;
        if peek(i).tok != Tok::Question {
            return Ok(cond);
        }
        bump(i);
        let (a, _, b) = cut_err((expr, tok(Tok::Colon), expr)).parse_next(i)?;
        let span = cond.span.to(b.span);
        build(
            ExprKind::Cond(Box::new(cond), Box::new(a), Box::new(b)),
            span,
        )
    })
}

/// Binary operator levels, loosest first.
const LEVELS: &[&[(Tok, BinOp)]] = &[
    &[(Tok::OrOr, BinOp::Or)],
    &[(Tok::AndAnd, BinOp::And)],
    &[(Tok::EqEq, BinOp::Eq), (Tok::NotEq, BinOp::Ne)],
    &[
        (Tok::Lt, BinOp::Lt),
        (Tok::Le, BinOp::Le),
        (Tok::Gt, BinOp::Gt),
        (Tok::Ge, BinOp::Ge),
    ],
    &[(Tok::Plus, BinOp::Add), (Tok::Minus, BinOp::Sub)],
    &[
        (Tok::Star, BinOp::Mul),
        (Tok::Slash, BinOp::Div),
        (Tok::Percent, BinOp::Rem),
    ],
];

/// Left-associative binary operators at `level` and tighter (recursion depth is
/// bounded by the number of levels).
fn binary(i: &mut In<'_, '_, '_>, level: usize) -> PResult<Expr> {
    let Some(ops) = LEVELS.get(level) else {
        return unary(i);
    };
    let mut lhs = binary(i, level + 1)?;
    loop {
        let t = peek(i).tok;
        let Some(&(_, op)) = ops.iter().find(|(k, _)| *k == t) else {
            return Ok(lhs);
        };
        bump(i);
        let rhs = cut_err(|i: &mut In<'_, '_, '_>| binary(i, level + 1)).parse_next(i)?;
        let span = lhs.span.to(rhs.span);
        lhs = build(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span)?;
    }
}

/// Prefix `-`, `+` and `!`, read in a loop (not recursively).
fn unary(i: &mut In<'_, '_, '_>) -> PResult<Expr> {
    let mut prefixes = Vec::new();
    loop {
        let t = peek(i);
        match t.tok {
            Tok::Minus => prefixes.push((UnOp::Neg, t.span)),
            Tok::Bang => prefixes.push((UnOp::Not, t.span)),
            Tok::Plus => {}
            _ => break,
        }
        bump(i);
    }
    let mut e = if !prefixes.is_empty() {
        cut_err(primary).parse_next(i)?
    } else {
        primary(i)?
    };
    for (op, span) in prefixes.into_iter().rev() {
        // Fold `-literal` into the literal so that `-3` stays an integer constant.
        let whole = span.to(e.span);
        e = match (op, e.kind) {
            (UnOp::Neg, ExprKind::Int(v)) => Expr::new(ExprKind::Int(-v), whole),
            (UnOp::Neg, ExprKind::Real(v)) => Expr::new(ExprKind::Real(-v), whole),
            (op, kind) => {
                let inner = Expr { kind, ..e };
                build(ExprKind::Unary(op, Box::new(inner)), whole)?
            }
        };
    }
    Ok(e)
}

fn primary(i: &mut In<'_, '_, '_>) -> PResult<Expr> {
    let t = peek(i);
    let kind = match t.tok {
        Tok::Int(v) => ExprKind::Int(v),
        Tok::Real(v) => ExprKind::Real(v),
        Tok::True => ExprKind::Bool(true),
        Tok::False => ExprKind::Bool(false),
        Tok::LParen => {
            bump(i);
            let e = cut_err(expr).parse_next(i)?;
            cut_err(tok(Tok::RParen)).parse_next(i)?;
            return Ok(Expr {
                span: t.span.to(prev_span(i)),
                ..e
            });
        }
        Tok::Ident => {
            let name = ident(i)?;
            let kind = match peek(i).tok {
                Tok::LParen => {
                    bump(i);
                    ExprKind::Call(name, cut_err(args).parse_next(i)?)
                }
                Tok::LBracket => {
                    bump(i);
                    let index = cut_err(expr).parse_next(i)?;
                    cut_err(tok(Tok::RBracket)).parse_next(i)?;
                    ExprKind::Index(name, Box::new(index))
                }
                _ => ExprKind::Var(name),
            };
            return build(kind, t.span.to(prev_span(i)));
        }
        _ => return Err(ErrMode::Backtrack(ctx(expected("an expression")))),
    };
    bump(i);
    Ok(Expr::new(kind, t.span))
}

/// Builds an expression node, failing past [`MAX_EXPR_DEPTH`].
fn build(kind: ExprKind, span: Span) -> PResult<Expr> {
    let e = Expr::new(kind, span);
    if e.depth as usize > MAX_EXPR_DEPTH {
        return Err(cut(StrContext::Label(
            "nesting: expression too deeply nested",
        )));
    }
    Ok(e)
}

fn ident(i: &mut In<'_, '_, '_>) -> PResult<Ident> {
    let t = peek(i);
    if t.tok != Tok::Ident {
        return Err(ErrMode::Backtrack(ctx(expected("a name"))));
    }
    bump(i);
    let name = i
        .state
        .src
        .get(t.span.start..t.span.end)
        .unwrap_or("")
        .to_string();
    Ok(Ident { name, span: t.span })
}

/// Matches one token of the given kind (payloads ignored).
fn tok<'t, 's, 'k>(kind: Tok) -> impl Parser<In<'t, 's, 'k>, Token, ErrMode<ContextError>> {
    move |i: &mut In<'t, 's, 'k>| {
        let t = peek(i);
        if std::mem::discriminant(&t.tok) == std::mem::discriminant(&kind) {
            bump(i);
            Ok(t)
        } else {
            Err(ErrMode::Backtrack(ctx(expected(kind.describe()))))
        }
    }
}

fn peek(i: &In<'_, '_, '_>) -> Token {
    // The token list always ends with `Eof`, which is never consumed.
    i.first().copied().unwrap_or(Token {
        tok: Tok::Eof,
        span: Span::new(i.state.src.len(), i.state.src.len()),
    })
}

fn bump(i: &mut In<'_, '_, '_>) {
    if i.len() > 1 {
        let _ = any::<_, ContextError>.parse_next(i);
    }
}

fn prev_span(i: &In<'_, '_, '_>) -> Span {
    i.previous_tokens()
        .next()
        .map_or_else(|| peek(i).span, |t| t.span)
}

fn expected(what: &'static str) -> StrContext {
    StrContext::Expected(StrContextValue::Description(what))
}

fn ctx(c: StrContext) -> ContextError {
    let mut e = ContextError::new();
    e.push(c);
    e
}

fn cut(c: StrContext) -> ErrMode<ContextError> {
    ErrMode::Cut(ctx(c))
}

fn error_at(i: &In<'_, '_, '_>, span: Span, msg: impl Into<String>) {
    i.state.errors.borrow_mut().push((span, msg.into()));
}

/// Describes a parse error at the current token: "expected X, found Y".
fn describe(i: &In<'_, '_, '_>, e: &ErrMode<ContextError>) -> (Span, String) {
    let at = peek(i);
    let found = match at.tok {
        Tok::Ident => format!(
            "`{}`",
            i.state.src.get(at.span.start..at.span.end).unwrap_or("")
        ),
        Tok::Int(_) | Tok::Real(_) => format!(
            "`{}`",
            i.state.src.get(at.span.start..at.span.end).unwrap_or("")
        ),
        other => other.describe().to_string(),
    };
    let inner = match e {
        ErrMode::Backtrack(c) | ErrMode::Cut(c) => Some(c),
        ErrMode::Incomplete(_) => None,
    };
    let mut wanted: Vec<String> = Vec::new();
    let mut label = None;
    for c in inner.into_iter().flat_map(ContextError::context) {
        match c {
            StrContext::Expected(v) => {
                let s = v.to_string();
                if !wanted.contains(&s) {
                    wanted.push(s);
                }
            }
            StrContext::Label(l) => label = Some(*l),
            _ => {}
        }
    }
    let msg = if let Some(l) = label.and_then(|l| l.strip_prefix("nesting: ")) {
        if l.starts_with("expression") {
            format!("{l} (at most {MAX_EXPR_DEPTH} levels of operators)")
        } else {
            format!("{l} (at most {MAX_DEPTH} levels of blocks and parentheses)")
        }
    } else if wanted.is_empty() {
        format!("unexpected {found}")
    } else {
        // The outermost context is the most specific description of what was wanted.
        let w = wanted.last().cloned().unwrap_or_default();
        format!("expected {w}, found {found}")
    };
    // A missing `;` is reported right after the previous token, where it belongs.
    let span = match i.previous_tokens().next() {
        Some(prev) if wanted.iter().any(|w| w == "`;`") => Span::new(prev.span.end, prev.span.end),
        _ => at.span,
    };
    (span, msg)
}
