//! The syntax tree of a Logstash pipeline configuration, as `parser.rs` builds it.
//! Positions are kept on every plugin and setting so that load-time errors can point at
//! the file, line and column they come from.

/// A line/column position (1-based) in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    Input,
    Filter,
    Output,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: SectionKind,
    pub body: Vec<Statement>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Plugin(Plugin),
    If(IfChain),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    pub name: String,
    pub settings: Vec<Setting>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Number(f64),
    Bareword(String),
    Array(Vec<Value>),
    Hash(Vec<(String, Value)>),
    /// `codec => json { charset => "UTF-8" }`
    Plugin(Plugin),
}

/// `if c { } else if c { } else { }`
#[derive(Debug, Clone, PartialEq)]
pub struct IfChain {
    pub branches: Vec<(Condition, Vec<Statement>)>,
    pub otherwise: Option<Vec<Statement>>,
    pub pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolOp {
    And,
    Or,
    Xor,
    Nand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Left-to-right chain, as Logstash evaluates it.
    Bool(Box<Condition>, BoolOp, Box<Condition>),
    Not(Box<Condition>),
    Compare(RValue, CompareOp, RValue),
    Match(RValue, String, bool),
    In(RValue, RValue, bool),
    Truthy(RValue),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RValue {
    String(String),
    Number(f64),
    /// `[a][b]` as its path segments.
    Field(Vec<String>),
    Array(Vec<RValue>),
    Regex(String),
}
