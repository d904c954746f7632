//! The program text the OpenQASM 3 parser reads, and the way back from it
//! to the client's own line and column.
//!
//! oq3_syntax parses OpenQASM 3 only; three statement forms of OpenQASM 2
//! (also legal, deprecated, OpenQASM 3) make it fail: `qreg q[2];`,
//! `creg c[2];` and `measure q -> c;`, plus the integer version
//! `OPENQASM 2;`. They are rewritten, token by token, into their OpenQASM 3
//! equivalents (`qubit[2] q;`, `bit[2] c;`, `c = measure q;`,
//! `OPENQASM 2.0;`) before parsing. Every byte of the rewritten text remembers
//! the byte of the original it came from, so errors still point at what the
//! client wrote.

use oq3_lexer::{LiteralKind, TokenKind};

use super::QasmError;

/// The text handed to the parser plus, for each of its bytes (and its end),
/// the byte offset in the original program.
pub(super) struct Source<'a> {
    pub original: &'a str,
    pub text: String,
    origin: Vec<usize>,
}

/// A non-trivia token of the original program.
#[derive(Clone, Copy)]
struct Tok {
    kind: TokenKind,
    start: usize,
    end: usize,
}

impl<'a> Source<'a> {
    pub fn new(original: &'a str) -> Result<Source<'a>, QasmError> {
        let mut s = Source {
            original,
            text: String::with_capacity(original.len()),
            origin: Vec::with_capacity(original.len() + 1),
        };
        let toks = tokens(original);
        refuse(original, &toks)?;
        let mut copied = 0;
        let mut i = 0;
        let mut at_statement_start = true;
        while i < toks.len() {
            let t = toks[i];
            let starts = at_statement_start;
            at_statement_start = matches!(
                t.kind,
                TokenKind::Semi | TokenKind::OpenBrace | TokenKind::CloseBrace
            );
            if !starts || t.kind != TokenKind::Ident {
                i += 1;
                continue;
            }
            let word = &original[t.start..t.end];
            let rewrite = match word {
                "OPENQASM" => s.version(&toks[i..]),
                "qreg" | "creg" => Some(s.register(&toks[i..], word)?),
                "measure" => s.arrow_measure(&toks[i..]),
                _ => None,
            };
            if let Some((consumed, pieces)) = rewrite {
                s.copy(copied, t.start);
                for piece in pieces {
                    match piece {
                        Piece::Copy(a, b) => s.copy(a, b),
                        Piece::Text(text, anchor) => s.push(text, anchor),
                    }
                }
                copied = toks[i + consumed - 1].end;
                i += consumed;
                at_statement_start = true;
            } else {
                i += 1;
            }
        }
        s.copy(copied, original.len());
        s.origin.push(original.len());
        Ok(s)
    }

    /// The original (line, column) of a byte offset in the rewritten text,
    /// both counted from 1, columns in characters.
    pub fn position(&self, at: usize) -> (usize, usize) {
        let orig = self.origin.get(at).copied().unwrap_or(self.original.len());
        line_column(self.original, orig)
    }

    fn copy(&mut self, from: usize, to: usize) {
        if from < to {
            self.text.push_str(&self.original[from..to]);
            self.origin.extend(from..to);
        }
    }

    fn push(&mut self, text: &str, anchor: usize) {
        self.text.push_str(text);
        self.origin.extend(std::iter::repeat_n(anchor, text.len()));
    }

    /// `OPENQASM 2;` -> `OPENQASM 2.0;` (the parser wants a float).
    fn version(&self, toks: &[Tok]) -> Option<(usize, Vec<Piece>)> {
        let [kw, num, semi, ..] = toks else { return None };
        let int = matches!(
            num.kind,
            TokenKind::Literal {
                kind: LiteralKind::Int { .. },
                ..
            }
        );
        (int && semi.kind == TokenKind::Semi).then(|| {
            (
                3,
                vec![
                    Piece::Copy(kw.start, num.end),
                    Piece::Text(".0", num.end),
                    Piece::Copy(num.end, semi.end),
                ],
            )
        })
    }

    /// `qreg name[size];` -> `qubit[size] name;`, `creg` -> `bit`.
    fn register(&self, toks: &[Tok], word: &str) -> Result<(usize, Vec<Piece>), QasmError> {
        let shape = match toks {
            [kw, name, open, size, close, semi, ..]
                if name.kind == TokenKind::Ident
                    && open.kind == TokenKind::OpenBracket
                    && matches!(
                        size.kind,
                        TokenKind::Literal {
                            kind: LiteralKind::Int { .. },
                            ..
                        }
                    )
                    && close.kind == TokenKind::CloseBracket
                    && semi.kind == TokenKind::Semi =>
            {
                Some((kw, name, open, close, semi))
            }
            _ => None,
        };
        let Some((kw, name, open, close, semi)) = shape else {
            let (line, column) = line_column(self.original, toks[0].start);
            let new = if word == "qreg" { "qubit" } else { "bit" };
            return Err(QasmError {
                line,
                column,
                construct: word.to_string(),
                message: format!(
                    "`{word}` declares a register as `{word} name[size];`: write it so, \
                     or as `{new}[size] name;`"
                ),
            });
        };
        let new = if word == "qreg" { "qubit" } else { "bit" };
        Ok((
            6,
            vec![
                Piece::Text(new, kw.start),
                Piece::Copy(open.start, close.end),
                Piece::Text(" ", close.end),
                Piece::Copy(name.start, name.end),
                Piece::Copy(semi.start, semi.end),
            ],
        ))
    }

    /// `measure a -> b;` -> `b = measure a;`.
    fn arrow_measure(&self, toks: &[Tok]) -> Option<(usize, Vec<Piece>)> {
        let semi = toks.iter().position(|t| t.kind == TokenKind::Semi)?;
        let arrow = (1..semi).find(|&k| {
            toks[k].kind == TokenKind::Minus
                && toks[k + 1].kind == TokenKind::Gt
                && toks[k + 1].start == toks[k].end
        })?;
        if arrow < 2 || arrow + 2 >= semi {
            return None;
        }
        let (kw, lhs_end) = (toks[0], toks[arrow - 1].end);
        let (rhs_start, rhs_end) = (toks[arrow + 2].start, toks[semi - 1].end);
        Some((
            semi + 1,
            vec![
                Piece::Copy(rhs_start, rhs_end),
                Piece::Text(" = ", toks[arrow].start),
                Piece::Copy(kw.start, lhs_end),
                Piece::Copy(toks[semi].start, toks[semi].end),
            ],
        ))
    }
}

/// Refuse, before the parser sees them, the keywords and tokens outside the
/// straight-line subset, wherever they appear. Before, not after: the parser
/// has internal assertions that some malformed input trips (a panic, which
/// aborts a release build), e.g. `delay q;` or a string where no include
/// is; so it only ever reads the tokens of the subset synqc supports (the
/// property test `arbitrary_text_is_answered` hunts for more), and `delay`
/// must be followed by its `[duration]`.
fn refuse(original: &str, toks: &[Tok]) -> Result<(), QasmError> {
    for (i, t) in toks.iter().enumerate() {
        let word = &original[t.start..t.end];
        let after_include = i > 0 && &original[toks[i - 1].start..toks[i - 1].end] == "include";
        let refusal = match t.kind {
            TokenKind::Ident => refusal(word),
            // A number followed by a word is a duration (the unit is its
            // own token): only `delay[...]` takes one.
            TokenKind::Literal {
                kind: LiteralKind::Int { .. } | LiteralKind::Float { .. },
                ..
            } if toks.get(i + 1).is_some_and(|n| n.kind == TokenKind::Ident)
                && !(i > 1
                    && toks[i - 1].kind == TokenKind::OpenBracket
                    && &original[toks[i - 2].start..toks[i - 2].end] == "delay") =>
            {
                Some(("durations outside delay", "write durations only as `delay[100ns] q[0];`"))
            }
            TokenKind::Literal {
                kind: LiteralKind::Int { .. } | LiteralKind::Float { .. },
                ..
            } => None,
            TokenKind::Literal {
                kind: LiteralKind::Str { terminated: true },
                ..
            } if after_include => None,
            TokenKind::Semi
            | TokenKind::Comma
            | TokenKind::OpenParen
            | TokenKind::CloseParen
            | TokenKind::OpenBrace
            | TokenKind::CloseBrace
            | TokenKind::OpenBracket
            | TokenKind::CloseBracket
            | TokenKind::Eq
            | TokenKind::Minus
            | TokenKind::Plus
            | TokenKind::Star
            | TokenKind::Slash => None,
            // Only in `->`.
            TokenKind::Gt if i > 0 && toks[i - 1].kind == TokenKind::Minus && toks[i - 1].end == t.start => None,
            TokenKind::Colon => Some(("index ranges", "name the qubits one by one, e.g. `q[0], q[1]`")),
            TokenKind::HardwareIdent => Some((
                "hardware qubits",
                "declare a register, e.g. `qubit[2] q;`, and use q[0]",
            )),
            TokenKind::Pragma | TokenKind::Annotation => Some(("pragmas and annotations", "remove the line")),
            _ => Some((
                "outside the supported language",
                "use gates, measure, reset, barrier, delay and angles of numbers, pi, + - * / and parentheses",
            )),
        };
        let (line, column) = line_column(original, t.start);
        if let Some((what, action)) = refusal {
            return Err(QasmError {
                line,
                column,
                construct: word.to_string(),
                message: format!(
                    "`{word}` ({what}) is not supported; synqc runs straight-line circuits: {action}"
                ),
            });
        }
        if t.kind == TokenKind::OpenBrace && i > 0 && toks[i - 1].kind == TokenKind::OpenBracket {
            return Err(QasmError {
                line,
                column,
                construct: "{".to_string(),
                message: "`{` (index sets) is not supported; synqc runs straight-line circuits: \
                          name the qubits one by one, e.g. `q[0], q[1]`"
                    .to_string(),
            });
        }
        if word == "delay" && toks.get(i + 1).is_none_or(|n| n.kind != TokenKind::OpenBracket) {
            return Err(QasmError {
                line,
                column,
                construct: word.to_string(),
                message: "a delay is written `delay[100ns] q[0];`: add the duration".to_string(),
            });
        }
    }
    Ok(())
}

/// The OpenQASM 3 keywords synqc refuses: (what it is, what to do).
fn refusal(word: &str) -> Option<(&'static str, &'static str)> {
    Some(match word {
        "if" | "else" | "switch" | "case" | "default" => ("classical control flow", "remove the condition"),
        "for" | "while" | "in" | "break" | "continue" | "end" => (
            "classical control flow",
            "unroll the loop into straight-line gates",
        ),
        "def" | "return" => (
            "subroutines",
            "write the operations inline, or as a `gate` definition",
        ),
        "extern" => ("external functions", "remove it; circuits run no classical code"),
        "box" => ("timing boxes", "keep the gates and time them with `delay`"),
        "cal" | "defcal" | "defcalgrammar" => (
            "pulse-level calibration",
            "remove it; the target's own calibration applies",
        ),
        "input" | "output" => ("run-time parameters", "write the values into the program"),
        "let" => ("aliases", "name the register's qubits directly"),
        "const" | "int" | "uint" | "float" | "angle" | "bool" | "duration" | "stretch" | "complex"
        | "array" | "readonly" | "mutable" | "void" => (
            "classical variables",
            "write angles and durations as literals and declare only `qubit` and `bit` registers",
        ),
        "ctrl" | "negctrl" | "inv" | "pow" => (
            "gate modifiers",
            "use cx or ccx, or a `gate` definition built from supported gates",
        ),
        "gphase" => ("global phase", "remove it; a global phase changes no outcome"),
        "opaque" => ("opaque gates", "define the gate with `gate` from supported gates"),
        _ => return None,
    })
}

enum Piece {
    /// Original bytes a..b.
    Copy(usize, usize),
    /// New text, reported at the given original offset.
    Text(&'static str, usize),
}

/// Non-trivia tokens with their byte ranges.
fn tokens(text: &str) -> Vec<Tok> {
    let mut at = 0;
    let mut out = Vec::new();
    for t in oq3_lexer::tokenize(text) {
        let end = at + t.len as usize;
        if !matches!(
            t.kind,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment { .. }
        ) {
            out.push(Tok {
                kind: t.kind,
                start: at,
                end,
            });
        }
        at = end;
    }
    out
}

/// 1-based line and character column of a byte offset.
pub(super) fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
