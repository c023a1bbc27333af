//! The metric names a PromQL expression selects, found by a small scanner rather than a full
//! parser: string literals, label matchers `{...}`, range and subquery selectors `[...]`, numbers
//! and durations, Grafana variables (`$var`, `${var}`, `$__rate_interval`), comments, function
//! names (an identifier before `(`), aggregation operators, keywords, and the label lists of
//! `by`/`without`/`on`/`ignoring`/`group_left`/`group_right` are stepped over; every identifier
//! left is a metric name. Names are returned as written (`x_bucket`, `x_total`); mapping them to
//! the families an exposition declares is [`super::exposition`]'s job.
//!
//! Brackets must balance and strings end. A selector that names no metric (`{job="x"}`,
//! `{__name__="x"}`) is refused, since its metric could not be checked.

use std::collections::BTreeSet;

/// Aggregation operators: identifiers that take `(` after an optional `by`/`without` clause, so
/// the "followed by `(`" rule of functions does not catch them.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords followed by an optional parenthesised list of label names.
const LABEL_LIST_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Other keywords: binary operators, modifiers and number literals.
const KEYWORDS: [&str; 8] = [
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
/// Single-character operators and punctuation (`(` and `)` are counted apart).
const OPERATORS: &str = "+-*/%^=!<>,@:";

/// The metric names `expr` selects, or why it cannot be read.
pub(crate) fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    Scanner {
        src: expr.as_bytes(),
        pos: 0,
    }
    .names()
}

struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn names(mut self) -> Result<BTreeSet<String>, String> {
        let mut names = BTreeSet::new();
        let mut open_parens = Vec::new();
        // Whether the token before a `{` was a metric name (else the selector names none).
        let mut after_metric = false;
        while let Some(c) = self.peek() {
            let start = self.pos;
            let mut metric = false;
            match c {
                c if c.is_ascii_whitespace() => self.pos += 1,
                b'#' => self.skip_while(|c| c != b'\n'),
                b'"' | b'\'' | b'`' => self.skip_string()?,
                b'{' => {
                    if !after_metric {
                        return Err(format!("selector at {start} names no metric"));
                    }
                    self.skip_matchers()?;
                }
                b'[' => self.skip_group(b'[', b']')?,
                b'$' => self.skip_variable()?,
                b'(' => {
                    open_parens.push(start);
                    self.pos += 1;
                }
                b')' => {
                    open_parens
                        .pop()
                        .ok_or_else(|| format!("`)` at {start} closes nothing"))?;
                    self.pos += 1;
                }
                b'0'..=b'9' | b'.' => self.skip_number(),
                c if is_identifier_start(c) => {
                    let word = self.identifier().to_ascii_lowercase();
                    if LABEL_LIST_KEYWORDS.contains(&word.as_str()) {
                        self.skip_whitespace();
                        if self.peek() == Some(b'(') {
                            self.skip_group(b'(', b')')?;
                        }
                    } else if !AGGREGATIONS.contains(&word.as_str())
                        && !KEYWORDS.contains(&word.as_str())
                        && !self.next_is_open_paren()
                    {
                        names.insert(String::from_utf8_lossy(&self.src[start..self.pos]).into());
                        metric = true;
                    }
                }
                c if OPERATORS.as_bytes().contains(&c) => self.pos += 1,
                c => return Err(format!("unexpected {:?} at {start}", char::from(c))),
            }
            if !self.src[start].is_ascii_whitespace() {
                after_metric = metric;
            }
        }
        match open_parens.last() {
            Some(at) => Err(format!("`(` at {at} is never closed")),
            None => Ok(names),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
    }

    fn skip_whitespace(&mut self) {
        self.skip_while(|c| c.is_ascii_whitespace());
    }

    fn identifier(&mut self) -> &str {
        let start = self.pos;
        self.skip_while(|c| is_identifier_start(c) || c.is_ascii_digit());
        std::str::from_utf8(&self.src[start..self.pos]).unwrap_or_default()
    }

    fn next_is_open_paren(&mut self) -> bool {
        let here = self.pos;
        self.skip_whitespace();
        let paren = self.peek() == Some(b'(');
        self.pos = here;
        paren
    }

    /// A quoted string; `"` and `'` strings take backslash escapes, backtick strings none.
    fn skip_string(&mut self) -> Result<(), String> {
        let start = self.pos;
        let quote = self.src[start];
        self.pos += 1;
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == quote {
                return Ok(());
            }
            if c == b'\\' && quote != b'`' {
                self.pos += 1;
            }
        }
        Err(format!("string at {start} never ends"))
    }

    /// From an opening bracket to its closing one, over strings and nested brackets of its kind.
    fn skip_group(&mut self, open: u8, close: u8) -> Result<(), String> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'"' | b'\'' | b'`' => {
                    self.skip_string()?;
                    continue;
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(format!("`{}` at {start} is never closed", char::from(open)))
    }

    /// Label matchers `{...}`, refusing a `__name__` matcher (the metric would go unchecked).
    fn skip_matchers(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.skip_group(b'{', b'}')?;
        let mut inner = Scanner {
            src: &self.src[start + 1..self.pos - 1],
            pos: 0,
        };
        while let Some(c) = inner.peek() {
            match c {
                b'"' | b'\'' | b'`' => inner.skip_string()?,
                c if is_identifier_start(c) => {
                    if inner.identifier() == "__name__" {
                        return Err(format!("selector at {start} matches on __name__"));
                    }
                }
                _ => inner.pos += 1,
            }
        }
        Ok(())
    }

    /// A Grafana variable: `$name` or `${name}` (with an optional `:format`).
    fn skip_variable(&mut self) -> Result<(), String> {
        self.pos += 1;
        if self.peek() == Some(b'{') {
            self.skip_group(b'{', b'}')
        } else {
            self.identifier();
            Ok(())
        }
    }

    /// A number or duration: `5`, `0.99`, `1e-3`, `0x1f`, `5m`, `1h30m`.
    fn skip_number(&mut self) {
        loop {
            self.skip_while(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
            let exponent = matches!(self.src[self.pos - 1], b'e' | b'E');
            if exponent && matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            } else {
                return;
            }
        }
    }
}

fn is_identifier_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .into_iter()
            .collect()
    }

    #[test]
    fn an_aggregated_rate_names_its_counter() {
        assert_eq!(
            names(r#"sum by (rcode) (rate(gtm_dnspod_queries_total{domain=~"$domain"}[5m]))"#),
            ["gtm_dnspod_queries_total"]
        );
    }

    #[test]
    fn label_lists_matchers_ranges_and_strings_are_not_names() {
        let expr = r#"histogram_quantile(0.99, sum without (instance) (rate(
            a_seconds_bucket{job="x", path=~"{not_a_name}[1m]", le!="b"}[$__rate_interval] offset 1h)))
            / on (pool) group_left (address) max by (pool) (b{pool=~"${pool:regex}"} @ start())"#;
        assert_eq!(names(expr), ["a_seconds_bucket", "b"]);
    }

    #[test]
    fn the_by_clause_may_follow_the_aggregated_expression() {
        assert_eq!(names("sum (rate(x_total[5m])) by (le, kind)"), ["x_total"]);
    }

    #[test]
    fn binary_operations_name_both_sides() {
        let expr = "sum(rate(a_sum[5m])) / sum(rate(a_count[5m])) > bool 0.5 and on() vector(1) unless c or d:recorded:rate5m";
        assert_eq!(names(expr), ["a_count", "a_sum", "c", "d:recorded:rate5m"]);
    }

    #[test]
    fn keywords_and_aggregations_are_case_insensitive() {
        assert_eq!(names("SUM BY (Kind) (x) AND Y"), ["Y", "x"]);
    }

    #[test]
    fn numbers_durations_subqueries_and_comments_are_skipped() {
        let expr = "# a comment naming not_a_metric\n\
                    max_over_time(rate(x_total[5m])[1h:30s]) * 1e-3 + 0x1F - .5 - inf + topk(3, y)";
        assert_eq!(names(expr), ["x_total", "y"]);
    }

    #[test]
    fn string_arguments_and_escaped_quotes_are_skipped() {
        let expr = r#"label_replace(up_down{a="say \"hi\" {x}"}, "dst", "$1", 'src', `(.*)\`)"#;
        assert_eq!(names(expr), ["up_down"]);
    }

    #[test]
    fn a_grafana_variable_outside_a_string_is_not_a_name() {
        assert_eq!(names("topk($limit, x) / ${scale}"), ["x"]);
    }

    #[test]
    fn selectors_that_name_no_metric_are_refused() {
        for expr in [
            r#"{job="x"}"#,
            r#"sum({__name__="x"})"#,
            r#"x{__name__=~"y.*"}"#,
        ] {
            assert!(metric_names(expr).is_err(), "{expr} accepted");
        }
    }

    #[test]
    fn unbalanced_brackets_and_open_strings_are_refused() {
        for (expr, why) in [
            ("sum(rate(x[5m])", "never closed"),
            ("x)", "closes nothing"),
            (r#"x{a="b}"#, "never ends"),
            ("rate(x[5m)", "never closed"),
            ("x ? y", "unexpected"),
        ] {
            let err = metric_names(expr).expect_err(expr);
            assert!(err.contains(why), "{expr}: {err}");
        }
    }
}
