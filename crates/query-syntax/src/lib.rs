//! PostgREST's query language, parsed once for everything in this repository that
//! reads it.
//!
//! Two readers take the same URL syntax (`select=*,messages(count)&title=ilike.*x*&
//! order=created_at.desc.nullslast&limit=10`): the dev server, which turns it into SQL
//! over PostgreSQL, and the SDK's core, which answers it from the device's replica.
//! One parser means the two can never disagree about what a query says, and the
//! differential test that compares their answers compares their meaning only.
//!
//! No I/O and no dependencies beyond URL decoding, so it builds for wasm as is.

pub mod ast;
mod error;
mod parse;

pub use ast::*;
pub use error::SyntaxError;
pub use parse::{parse_leaf, parse_order, parse_query, parse_select};
