//! The syntax tree of a generated program (scalar types, expressions and statements)
//! and its rendering to source text. Compound expressions are rendered in
//! parentheses, so that the text parses back to the same tree.

use std::fmt::{self, Display, Formatter};

/// The scalar types of the language (an int is accepted wherever a real is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Real,
    Int,
    Bool,
}

impl Ty {
    /// The type's name in declarations.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Real => "real",
            Ty::Int => "int",
            Ty::Bool => "bool",
        }
    }
}

/// An expression. Compound expressions are rendered in parentheses, so the tree's
/// structure is the parsed structure.
#[derive(Debug, Clone)]
pub enum Expr {
    Real(f64),
    Int(i64),
    Bool(bool),
    /// A scalar, or a data vector's name as a function argument.
    Name(String),
    /// A data-vector or indexed-site element.
    Index(String, Box<Expr>),
    /// `-a` or `!a`.
    Unary(&'static str, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    /// `c ? a : b`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(&'static str, Vec<Expr>),
}

impl Expr {
    pub fn name(n: &str) -> Expr {
        Expr::Name(n.to_string())
    }

    pub fn index(n: &str, index: Expr) -> Expr {
        Expr::Index(n.to_string(), Box::new(index))
    }

    pub fn unary(op: &'static str, a: Expr) -> Expr {
        Expr::Unary(op, Box::new(a))
    }

    pub fn bin(op: &'static str, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    pub fn cond(c: Expr, a: Expr, b: Expr) -> Expr {
        Expr::Cond(Box::new(c), Box::new(a), Box::new(b))
    }

    pub fn call(f: &'static str, args: Vec<Expr>) -> Expr {
        Expr::Call(f, args)
    }

    pub fn call1(f: &'static str, a: Expr) -> Expr {
        Expr::Call(f, vec![a])
    }

    /// The names the expression reads (scalars, data vectors and indexed sites).
    pub fn names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Real(_) | Expr::Int(_) | Expr::Bool(_) => {}
            Expr::Name(n) => out.push(n),
            Expr::Index(n, i) => {
                out.push(n);
                i.names(out);
            }
            Expr::Unary(_, a) => a.names(out),
            Expr::Binary(_, a, b) => [a, b].iter().for_each(|e| e.names(out)),
            Expr::Cond(c, a, b) => [c, a, b].iter().for_each(|e| e.names(out)),
            Expr::Call(_, args) => args.iter().for_each(|e| e.names(out)),
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            // `{:?}` always writes a fraction or exponent, so reals stay reals.
            Expr::Real(v) if v.is_sign_negative() => write!(f, "({v:?})"),
            Expr::Real(v) => write!(f, "{v:?}"),
            Expr::Int(v) if *v < 0 => write!(f, "({v})"),
            Expr::Int(v) => write!(f, "{v}"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Name(n) => write!(f, "{n}"),
            Expr::Index(n, i) => write!(f, "{n}[{i}]"),
            Expr::Unary(op, a) => write!(f, "({op}{a})"),
            Expr::Binary(op, a, b) => write!(f, "({a} {op} {b})"),
            Expr::Cond(c, a, b) => write!(f, "({c} ? {a} : {b})"),
            Expr::Call(g, args) => {
                let args: Vec<String> = args.iter().map(ToString::to_string).collect();
                write!(f, "{g}({})", args.join(", "))
            }
        }
    }
}

/// A statement.
#[derive(Debug, Clone)]
pub enum Stmt {
    /// `target[index] ~ dist(args);`: a latent, an observation or an indexed site.
    Sample {
        target: String,
        index: Option<Expr>,
        dist: &'static str,
        args: Vec<Expr>,
    },
    /// `let target[index] = value;`.
    Let {
        target: String,
        index: Option<Expr>,
        value: Expr,
    },
    Factor(Expr),
    /// An `else` block holding just an `if` is rendered as `else if` (which parses to
    /// the same tree).
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    For {
        var: String,
        lo: i64,
        hi: Expr,
        body: Vec<Stmt>,
    },
    Output(Vec<String>),
}

impl Stmt {
    pub fn sample(target: &str, index: Option<Expr>, dist: &'static str, args: Vec<Expr>) -> Stmt {
        let target = target.to_string();
        Stmt::Sample {
            target,
            index,
            dist,
            args,
        }
    }

    pub fn assign(target: &str, index: Option<Expr>, value: Expr) -> Stmt {
        let target = target.to_string();
        Stmt::Let {
            target,
            index,
            value,
        }
    }

    fn render(&self, out: &mut String, depth: usize) {
        let target = |t: &str, i: &Option<Expr>| match i {
            Some(i) => format!("{t}[{i}]"),
            None => t.to_string(),
        };
        let end = format!("{}}}", "  ".repeat(depth));
        let text = match self {
            Stmt::Sample {
                target: t,
                index,
                dist,
                args,
            } => format!("{} ~ {};", target(t, index), Expr::call(dist, args.clone())),
            Stmt::Let {
                target: t,
                index,
                value,
            } => format!("let {} = {value};", target(t, index)),
            Stmt::Factor(e) => format!("factor({e});"),
            Stmt::Output(names) => format!("output {};", names.join(", ")),
            Stmt::For { var, lo, hi, body } => {
                out.push_str(&format!("for {var} in {}..{hi} {{\n", Expr::Int(*lo)));
                render_block(out, body, depth + 1);
                end
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                out.push_str(&format!("if {cond} {{\n"));
                render_block(out, then, depth + 1);
                out.push_str(&end);
                match otherwise.as_slice() {
                    [] => String::new(),
                    [s @ Stmt::If { .. }] => {
                        out.push_str(" else ");
                        return s.render(out, depth);
                    }
                    b => {
                        out.push_str(" else {\n");
                        render_block(out, b, depth + 1);
                        end
                    }
                }
            }
        };
        out.push_str(&text);
    }
}

pub(super) fn render_block(out: &mut String, body: &[Stmt], depth: usize) {
    for s in body {
        out.push_str(&"  ".repeat(depth));
        s.render(out, depth);
        out.push('\n');
    }
}
