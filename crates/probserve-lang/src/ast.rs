//! Syntax tree produced by the parser and consumed by the checker.

use crate::diag::Span;

/// A name with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ident {
    pub(crate) name: String,
    pub(crate) span: Span,
}

/// A whole `model name { ... }` program.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub(crate) name: Ident,
    pub(crate) body: Vec<Stmt>,
}

/// Element type of a data declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElemTy {
    Real,
    Int,
    Bool,
}

/// The size part of a vector data type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SizeSpec {
    /// `real[]` or `vector<real>`: any length.
    Any,
    /// `real[8]`.
    Fixed(i64),
    /// `real[N]` with `N` an `int` data declaration.
    Named(Ident),
    /// `real[len(x)]`: the same length as data vector `x`.
    LenOf(Ident),
}

/// A declared data type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TypeSpec {
    pub(crate) elem: ElemTy,
    pub(crate) size: Option<SizeSpec>,
}

/// Left side of `~` or `let`: `x` or `x[i]`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: Ident,
    pub(crate) index: Option<Expr>,
}

/// A statement with its position.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub(crate) kind: StmtKind,
    pub(crate) span: Span,
}

#[derive(Debug, Clone)]
pub(crate) enum StmtKind {
    Data {
        name: Ident,
        ty: TypeSpec,
    },
    Let {
        target: Target,
        value: Expr,
    },
    Sample {
        target: Target,
        dist: Ident,
        args: Vec<Expr>,
    },
    Factor(Expr),
    If {
        cond: Expr,
        then_body: Vec<Stmt>,
        else_body: Vec<Stmt>,
    },
    For {
        var: Ident,
        lo: Expr,
        hi: Expr,
        body: Vec<Stmt>,
    },
    Output(Vec<Ident>),
    /// A statement that failed to parse; its diagnostic is already recorded.
    Error,
}

/// An expression with its position.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub(crate) kind: ExprKind,
    pub(crate) span: Span,
    /// Height of the tree (1 for a leaf); bounded by the parser so that recursive
    /// passes over it cannot overflow the stack.
    pub(crate) depth: u32,
}

impl Expr {
    pub(crate) fn new(kind: ExprKind, span: Span) -> Self {
        let below = match &kind {
            ExprKind::Int(_) | ExprKind::Real(_) | ExprKind::Bool(_) | ExprKind::Var(_) => 0,
            ExprKind::Index(_, a) | ExprKind::Unary(_, a) => a.depth,
            ExprKind::Call(_, args) => args.iter().map(|a| a.depth).max().unwrap_or(0),
            ExprKind::Binary(_, a, b) => a.depth.max(b.depth),
            ExprKind::Cond(c, a, b) => c.depth.max(a.depth).max(b.depth),
        };
        Self {
            kind,
            span,
            depth: below + 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum ExprKind {
    Int(i64),
    Real(f64),
    Bool(bool),
    Var(Ident),
    Index(Ident, Box<Expr>),
    Call(Ident, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}
