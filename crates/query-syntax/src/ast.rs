//! PostgREST's query language as a small AST of names and raw values (what
//! [`crate::parse_query`] makes of `select`, filters, logic trees, `order`, `limit`, `offset`,
//! `on_conflict` and `columns`). Nothing here touches SQL; names are checked against
//! the schema by whoever reads it (the dev server's schema cache, the core's declared tables).

/// A filter operator (reference §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    Match,
    Imatch,
    Is,
    In,
    IsDistinct,
    Contains,
    ContainedIn,
    Overlaps,
    /// Range operators: strictly left of (`<<`), strictly right of (`>>`), does not
    /// extend to the right of (`&<`), to the left of (`&>`), adjacent to (`-|-`).
    StrictlyLeft,
    StrictlyRight,
    NotExtendRight,
    NotExtendLeft,
    Adjacent,
    /// Full-text search: `to_tsquery`, `plainto_tsquery`, `phraseto_tsquery`,
    /// `websearch_to_tsquery`, each with an optional configuration (`fts(english)`).
    Fts,
    Plfts,
    Phfts,
    Wfts,
}

/// `op(any).{a,b}` / `op(all).{a,b}`: the comparison against each item of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "like" => Op::Like,
            "ilike" => Op::Ilike,
            "match" => Op::Match,
            "imatch" => Op::Imatch,
            "is" => Op::Is,
            "in" => Op::In,
            "isdistinct" => Op::IsDistinct,
            "cs" => Op::Contains,
            "cd" => Op::ContainedIn,
            "ov" => Op::Overlaps,
            "sl" => Op::StrictlyLeft,
            "sr" => Op::StrictlyRight,
            "nxl" => Op::NotExtendLeft,
            "nxr" => Op::NotExtendRight,
            "adj" => Op::Adjacent,
            "fts" => Op::Fts,
            "plfts" => Op::Plfts,
            "phfts" => Op::Phfts,
            "wfts" => Op::Wfts,
            _ => return None,
        })
    }
}

/// One `column op value` test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub column: String,
    pub negate: bool,
    pub op: Op,
    /// The raw value (for `in` and quantified operators, the items are in `list`).
    pub value: String,
    pub list: Vec<String>,
    pub quantifier: Option<Quantifier>,
    /// The text search configuration of a full-text operator (`fts(english)`), bound
    /// as a `regconfig` value.
    pub config: Option<String>,
}

/// A filter condition: a leaf or a (possibly negated) and/or of conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Leaf(Leaf),
    And { negate: bool, items: Vec<Cond> },
    Or { negate: bool, items: Vec<Cond> },
}

/// One item of `select`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    Star,
    Column {
        name: String,
        alias: Option<String>,
        cast: Option<String>,
    },
    Embed {
        relation: String,
        alias: Option<String>,
        /// `!fk_name` or `!inner`/`!left` markers.
        hint: Option<String>,
        inner: bool,
        /// `...rel(cols)`: the related row's columns spread into this row.
        spread: bool,
        /// `rel()`: nothing selected (the embed only filters, with `!inner`).
        items: Vec<SelectItem>,
    },
    /// `count()`, `col.sum()`, `col.avg()`, `col.min()`, `col.max()`, `col.count()`
    /// (and a bare `count` inside an embed: `rel(count)`); the other columns group.
    Aggregate {
        func: Aggregate,
        column: Option<String>,
        alias: Option<String>,
        cast: Option<String>,
    },
}

/// The aggregate functions PostgREST allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl Aggregate {
    pub fn parse(s: &str) -> Option<Aggregate> {
        Some(match s {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            _ => return None,
        })
    }

    /// The SQL function, which is also the result's default name.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
        }
    }
}


/// `NULLS FIRST` / `NULLS LAST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

/// One term of `order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub column: String,
    pub desc: bool,
    pub nulls: Option<Nulls>,
}

/// What the query string says about one embedded resource (`rel.col=eq.1`,
/// `rel.or=(…)`, `rel.order=col.desc`, `rel.limit=2`, `rel.offset=1`; nested ones as
/// `rel.sub.col=…`), keyed by the path of embed names (or aliases) from the top.
#[derive(Debug, Clone, Default)]
pub struct EmbedParams {
    pub conds: Vec<Cond>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub type EmbeddedParams = std::collections::BTreeMap<Vec<String>, EmbedParams>;

/// Everything the query string says.
#[derive(Debug, Clone, Default)]
pub struct QueryParams {
    pub select: Option<Vec<SelectItem>>,
    pub conds: Vec<Cond>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub on_conflict: Option<Vec<String>>,
    pub columns: Option<Vec<String>>,
    /// Parameters that are not reserved words and not filters: RPC arguments on GET.
    pub other: Vec<(String, String)>,
    pub embedded: EmbeddedParams,
}
