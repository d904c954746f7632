//! `gate` definitions: their bodies checked once, kept as calls with angle
//! expressions over the gate's parameters, and unrolled where they are used.

use oq3_syntax::ast::{self, AstNode, HasName};
use oq3_syntax::{SyntaxKind, SyntaxNode};

use super::*;

/// An angle expression of a gate body, over the gate's parameters.
#[derive(Clone, Debug)]
pub(super) enum Expr {
    Num(f64),
    Param(usize),
    Neg(Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
}

impl Expr {
    pub(super) fn eval(&self, params: &[f64]) -> f64 {
        match self {
            Expr::Num(v) => *v,
            Expr::Param(i) => params.get(*i).copied().unwrap_or(f64::NAN),
            Expr::Neg(e) => -e.eval(params),
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(params), b.eval(params));
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    _ => a / b,
                }
            }
        }
    }
}

impl Lowerer<'_, '_> {
    pub(super) fn define(&mut self, g: &ast::Gate) -> Res<()> {
        let at = start(g.syntax());
        let name = g.name().map(|n| text(n.syntax())).unwrap_or_default();
        if self.gate_index.contains_key(&name)
            || (Std::named(&name).is_some() && self.included)
            || name == "U"
        {
            return Err(self.err(
                at,
                &name,
                format!("gate `{name}` is already defined: give the new gate another name"),
            ));
        }
        let names = |l: Option<ast::ParamList>| -> Vec<String> {
            l.map(|l| l.params().map(|p| text(p.syntax())).collect())
                .unwrap_or_default()
        };
        let params = names(g.angle_params());
        let qubits = names(g.qubit_params());
        if qubits.is_empty() {
            return Err(self.err(
                at,
                &name,
                format!("gate `{name}` needs at least one qubit argument"),
            ));
        }
        let mut body = Vec::new();
        let mut nesting = 1;
        let stmts: Vec<ast::Stmt> = g.body().map(|b| b.statements().collect()).unwrap_or_default();
        for stmt in stmts {
            let sat = start(stmt.syntax());
            let operand_index = |n: &SyntaxNode| -> Res<usize> {
                let t = text(n);
                match qubits.iter().position(|q| *q == t) {
                    Some(i) if n.kind() == SyntaxKind::IDENTIFIER => Ok(i),
                    _ => Err(self.err(
                        start(n),
                        &t,
                        format!(
                            "in gate `{name}`, `{t}` is not one of its qubit arguments ({}); a gate body \
                             names its own arguments, without indices",
                            qubits.join(", ")
                        ),
                    )),
                }
            };
            match &stmt {
                ast::Stmt::ExprStmt(e) => {
                    let Some(ast::Expr::GateCallExpr(call)) = e.expr() else {
                        return Err(self.body_error(sat, &name, stmt.syntax()));
                    };
                    let (_, gate, arg_nodes, operand_nodes) = self.call_parts(&call)?;
                    if let GateRef::User(i) = gate {
                        nesting = nesting.max(self.gates[i].nesting + 1);
                    }
                    let args = arg_nodes
                        .iter()
                        .map(|n| self.expr(n, &params))
                        .collect::<Res<Vec<_>>>()?;
                    let qs = operand_nodes.iter().map(operand_index).collect::<Res<Vec<_>>>()?;
                    body.push(Call {
                        gate,
                        args,
                        qubits: qs,
                    });
                }
                ast::Stmt::Barrier(b) => {
                    let qs = match b.qubit_list() {
                        Some(list) => list
                            .syntax()
                            .children()
                            .map(|n| operand_index(&n))
                            .collect::<Res<Vec<_>>>()?,
                        None => (0..qubits.len()).collect(),
                    };
                    body.push(Call {
                        gate: GateRef::Barrier,
                        args: vec![],
                        qubits: qs,
                    });
                }
                _ => return Err(self.body_error(sat, &name, stmt.syntax())),
            }
        }
        if nesting > MAX_GATE_NESTING {
            return Err(self.err(
                at,
                &name,
                format!("gate `{name}` nests defined gates more than {MAX_GATE_NESTING} deep: flatten the definitions"),
            ));
        }
        self.gate_index.insert(name, self.gates.len());
        self.gates.push(GateDef {
            params: params.len(),
            qubits: qubits.len(),
            body,
            nesting,
        });
        Ok(())
    }

    pub(super) fn body_error(&self, at: usize, name: &str, node: &SyntaxNode) -> QasmError {
        self.err(
            at,
            &first_word(node),
            format!(
                "`{}` cannot appear in the body of gate `{name}`: a gate body holds gate calls and barriers only",
                first_word(node)
            ),
        )
    }

    /// An angle expression: numbers, pi, the gate's parameters, + - * /,
    /// unary minus and parentheses.
    pub(super) fn expr(&self, node: &SyntaxNode, params: &[String]) -> Res<Expr> {
        let at = start(node);
        let bad = |what: String| {
            self.err(
                at,
                &text(node),
                format!("{what}: an angle is built from numbers, pi, + - * /, unary minus and parentheses"),
            )
        };
        match ast::Expr::cast(node.clone()) {
            Some(ast::Expr::Literal(_)) => match number(node) {
                Some(v) => Ok(Expr::Num(v)),
                None => Err(bad(format!("`{}` is not a number", text(node)))),
            },
            Some(ast::Expr::Identifier(_)) => {
                let name = text(node);
                if name == "pi" || name == "π" {
                    Ok(Expr::Num(PI))
                } else if let Some(i) = params.iter().position(|p| *p == name) {
                    Ok(Expr::Param(i))
                } else {
                    Err(bad(format!("`{name}` is not pi or a parameter of the gate")))
                }
            }
            Some(ast::Expr::ParenExpr(p)) => match p.expr() {
                Some(e) => self.expr(e.syntax(), params),
                None => Err(bad("empty parentheses".to_string())),
            },
            Some(ast::Expr::PrefixExpr(p)) => match (p.op_kind(), p.expr()) {
                (Some(ast::UnaryOp::Neg), Some(e)) => Ok(Expr::Neg(Box::new(self.expr(e.syntax(), params)?))),
                _ => Err(bad(format!("`{}` is not supported", text(node)))),
            },
            Some(ast::Expr::BinExpr(b)) => {
                let op = match b.op_kind() {
                    Some(ast::BinaryOp::ArithOp(ast::ArithOp::Add)) => '+',
                    Some(ast::BinaryOp::ArithOp(ast::ArithOp::Sub)) => '-',
                    Some(ast::BinaryOp::ArithOp(ast::ArithOp::Mul)) => '*',
                    Some(ast::BinaryOp::ArithOp(ast::ArithOp::Div)) => '/',
                    _ => {
                        let op = b.op_token().map(|t| t.text().to_string()).unwrap_or_default();
                        return Err(bad(format!("operator `{op}` is not supported")));
                    }
                };
                match (b.lhs(), b.rhs()) {
                    (Some(l), Some(r)) => Ok(Expr::Bin(
                        op,
                        Box::new(self.expr(l.syntax(), params)?),
                        Box::new(self.expr(r.syntax(), params)?),
                    )),
                    _ => Err(bad("incomplete expression".to_string())),
                }
            }
            _ => Err(bad(format!("`{}` is not supported", text(node)))),
        }
    }
}
