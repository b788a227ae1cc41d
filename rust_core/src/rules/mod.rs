//! Compiled rules: CEL conditions checked at load and evaluated against a suggestion and the
//! evidence its signal resolves to.
//!
//! Python loads and validates the YAML (positions, lists, macros, effects); this module
//! compiles each condition with the `cel` crate, refuses what it cannot safely run (unknown
//! variables or fields, oversized or too deeply nested expressions), and evaluates.
//! The outcome of every rule is returned; combining effects into a verdict is the caller's.
//!
//! Steps, each using only the ones before it: [`check`] (one condition's load-time checks),
//! [`compile`] (a rule set compiled), [`evaluate`] (a rule set against a suggestion).

pub mod check;
pub mod compile;
pub mod evaluate;

pub use check::{
    compile_condition, FunctionNames, FROM_CLAIM_METRIC, FROM_CLAIM_SIGNAL, FROM_CLAIM_STATISTIC,
    MAX_COMPREHENSION_DEPTH, MAX_DEPTH, MAX_EXPRESSION_LEN,
};
pub use compile::{RuleFunction, RuleSet, RuleSpec};
pub use evaluate::{RuleOutcome, MAX_INPUT_ITEMS};

#[cfg(test)]
mod tests;
