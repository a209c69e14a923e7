//! Threshold expressions, k6's syntax plus windows:
//! `METRIC[{tag:value,...}]: AGG OP VALUE[unit] [over WINDOW][, ...]`.
//!
//! Every mistake is an error with its column, never a silent pass.

use std::fmt;
use std::time::Duration;

/// What kind of values a metric has, which decides its aggregations and
/// units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A distribution in milliseconds: p(N), avg, min, med, max, count.
    Trend,
    /// A share of true values: rate.
    Rate,
    /// A count: count, rate (per second).
    Counter,
    /// One value in milliseconds: value.
    Value,
}

/// A metric thresholds can name.
#[derive(Debug, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Tag names it can be selected by.
    pub tags: &'static [&'static str],
    /// Evaluable second by second (windows, abort_on_fail).
    pub per_second: bool,
    /// Only a drill produces it.
    pub drill: bool,
}

/// `stage` selects the seconds of one stage of the profile; the others
/// select requests.
const HTTP_TAGS: &[&str] = &["endpoint", "tenant", "method", "status", "stage"];
const STAGE: &[&str] = &["stage"];

const fn m(
    name: &'static str,
    kind: Kind,
    tags: &'static [&'static str],
    per_second: bool,
) -> MetricDef {
    MetricDef {
        name,
        kind,
        tags,
        per_second,
        drill: false,
    }
}

/// Every metric a threshold can name.
pub static METRICS: &[MetricDef] = &[
    m("http_req_duration", Kind::Trend, HTTP_TAGS, true),
    m("http_req_service_time", Kind::Trend, HTTP_TAGS, true),
    m("generator_lag", Kind::Trend, STAGE, true),
    m("http_req_waiting", Kind::Trend, &[], false),
    m("http_req_receiving", Kind::Trend, &[], false),
    m("http_req_connecting", Kind::Trend, &[], false),
    m("http_req_tls_handshaking", Kind::Trend, &[], false),
    m("session_duration", Kind::Trend, &[], false),
    m("auth_req_duration", Kind::Trend, &[], false),
    m("http_reqs", Kind::Counter, HTTP_TAGS, true),
    m("http_req_failed", Kind::Rate, HTTP_TAGS, true),
    m("checks", Kind::Rate, &["check", "stage"], true),
    m("sessions_dropped", Kind::Counter, STAGE, true),
    // The spec's name for the same count, kept as written in verdicts.
    m("dropped_sessions", Kind::Counter, STAGE, true),
    m("sessions_late", Kind::Counter, STAGE, true),
    m("auth_failures", Kind::Counter, &[], false),
    m("auth_retries", Kind::Counter, &[], false),
    m("token_refreshes", Kind::Counter, &[], false),
    MetricDef {
        name: "recovery_time",
        kind: Kind::Value,
        tags: &[],
        per_second: false,
        drill: true,
    },
];

pub fn metric(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Agg {
    /// Percentile, 0–100.
    P(f64),
    Avg,
    Min,
    Med,
    Max,
    Count,
    Rate,
    Value,
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agg::P(p) => write!(f, "p({p})"),
            Agg::Avg => f.write_str("avg"),
            Agg::Min => f.write_str("min"),
            Agg::Med => f.write_str("med"),
            Agg::Max => f.write_str("max"),
            Agg::Count => f.write_str("count"),
            Agg::Rate => f.write_str("rate"),
            Agg::Value => f.write_str("value"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn holds(self, observed: f64, bound: f64) -> bool {
        match self {
            Op::Lt => observed < bound,
            Op::Le => observed <= bound,
            Op::Gt => observed > bound,
            Op::Ge => observed >= bound,
            Op::Eq => (observed - bound).abs() < 1e-9,
            Op::Ne => (observed - bound).abs() >= 1e-9,
        }
    }
}

/// One threshold, parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// As written (normalised spacing): `http_req_duration{tenant:acme}: p(95)<500`.
    pub source: String,
    pub metric: &'static MetricDef,
    /// (tag, value) pairs, all of which must match.
    pub tags: Vec<(String, String)>,
    pub agg: Agg,
    pub op: Op,
    /// In the metric's unit: milliseconds, a fraction, a count, or a count
    /// per second for `rate` of a counter.
    pub bound: f64,
    /// Every window of this length must hold.
    pub window: Option<Duration>,
    pub abort_on_fail: bool,
    /// abort_on_fail is not judged before this much of the run.
    pub delay_abort: Duration,
}

/// A metric and its (tag, value) pairs.
pub type Selector = (&'static MetricDef, Vec<(String, String)>);

/// A mistake in a threshold, with the column it is at (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub input: String,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "threshold `{}`, column {}: {}\n    {}\n    {}^",
            self.input,
            self.column,
            self.message,
            self.input,
            " ".repeat(
                self.input[..self.column.saturating_sub(1).min(self.input.len())]
                    .chars()
                    .count()
            )
        )
    }
}

impl std::error::Error for ParseError {}

struct Cursor<'a> {
    s: &'a str,
    /// Byte offset of `s` in the whole input.
    base: usize,
    pos: usize,
    input: &'a str,
}

impl<'a> Cursor<'a> {
    fn err(&self, at: usize, message: impl Into<String>) -> ParseError {
        let byte = (self.base + at).min(self.input.len());
        ParseError {
            input: self.input.to_string(),
            column: self.input[..byte].chars().count() + 1,
            message: message.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    fn eat(&mut self, t: &str) -> bool {
        if self.rest().starts_with(t) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }
}

/// Parses a `--threshold` argument: a metric (with tags) and one or more
/// expressions separated by commas.
pub fn parse(input: &str) -> Result<Vec<Threshold>, ParseError> {
    let mut c = Cursor {
        s: input,
        base: 0,
        pos: 0,
        input,
    };
    let (metric, tags) = selector(&mut c, true)?;
    c.skip_ws();
    if !c.eat(":") {
        return Err(c.err(
            c.pos,
            "expected `:` after the metric, then an expression like `p(95)<500`",
        ));
    }
    let mut out = Vec::new();
    loop {
        let t = expression(&mut c, metric, &tags)?;
        out.push(t);
        c.skip_ws();
        if c.pos == c.s.len() {
            break;
        }
        if !c.eat(",") {
            return Err(c.err(c.pos, "expected `,` and another expression, or the end"));
        }
    }
    Ok(out)
}

/// Parses a metric with its tags (`http_req_duration{tenant:acme}`), as a
/// whole string (the config file's keys).
pub fn parse_selector(input: &str) -> Result<Selector, ParseError> {
    let mut c = Cursor {
        s: input,
        base: 0,
        pos: 0,
        input,
    };
    let r = selector(&mut c, false)?;
    c.skip_ws();
    if c.pos != c.s.len() {
        return Err(c.err(c.pos, "unexpected text after the metric"));
    }
    Ok(r)
}

/// Parses one expression for a given metric (the config file's values).
pub fn parse_expression(
    input: &str,
    metric: &'static MetricDef,
    tags: &[(String, String)],
) -> Result<Threshold, ParseError> {
    let mut c = Cursor {
        s: input,
        base: 0,
        pos: 0,
        input,
    };
    let t = expression(&mut c, metric, tags)?;
    c.skip_ws();
    if c.pos != c.s.len() {
        return Err(c.err(c.pos, "unexpected text after the expression"));
    }
    Ok(t)
}

fn selector(c: &mut Cursor<'_>, colon_follows: bool) -> Result<Selector, ParseError> {
    c.skip_ws();
    let start = c.pos;
    let name_len = c
        .rest()
        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .unwrap_or(c.rest().len());
    if name_len == 0 {
        return Err(c.err(start, "expected a metric name, like http_req_duration"));
    }
    let name = &c.rest()[..name_len];
    let Some(def) = metric(name) else {
        let hint = suggest(name, METRICS.iter().map(|m| m.name));
        return Err(c.err(start, format!("unknown metric `{name}`{hint}")));
    };
    c.pos += name_len;
    let mut tags = Vec::new();
    if c.rest().starts_with('{') {
        let open = c.pos;
        // The selector ends at the matching brace: values may hold braces
        // of their own (`endpoint:GET /products/{id}`).
        let mut depth = 0usize;
        let mut end = None;
        for (i, ch) in c.rest().char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| c.err(open, "`{` without its closing `}`"))?;
        let inner = &c.rest()[1..end];
        let inner_at = c.pos + 1;
        let mut offset = 0;
        for part in split_top(inner) {
            let at = inner_at + offset;
            offset += part.len() + 1;
            let Some((tag, value)) = part.split_once(':') else {
                return Err(c.err(at, format!("`{}` is not `tag:value`", part.trim())));
            };
            let (tag, value) = (tag.trim(), value.trim());
            if !def.tags.contains(&tag) {
                let known = if def.tags.is_empty() {
                    format!("{} has no tags", def.name)
                } else {
                    format!("{} has tags {}", def.name, def.tags.join(", "))
                };
                return Err(c.err(at, format!("unknown tag `{tag}`: {known}")));
            }
            if value.is_empty() {
                return Err(c.err(at, format!("tag `{tag}` has no value")));
            }
            if tag == "stage" && !value.parse::<usize>().is_ok_and(|n| n >= 1) {
                return Err(c.err(
                    at,
                    format!("stage `{value}` is not a stage number (1 is the first)"),
                ));
            }
            tags.push((tag.to_string(), value.to_string()));
        }
        if tags.len() > 1 && tags.iter().any(|(t, _)| t == "stage") {
            return Err(c.err(
                open,
                "a stage is judged on the run's per-second measurements, which have no other tags",
            ));
        }
        c.pos += end + 1;
    } else if !colon_follows && !c.rest().trim().is_empty() {
        return Err(c.err(c.pos, "expected `{tag:value}` or the end of the metric"));
    }
    Ok((def, tags))
}

/// `metric{tag:value,...}` as written back.
pub fn selector_text(def: &MetricDef, tags: &[(String, String)]) -> String {
    if tags.is_empty() {
        return def.name.to_string();
    }
    format!(
        "{}{{{}}}",
        def.name,
        tags.iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Splits on commas outside braces.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn expression(
    c: &mut Cursor<'_>,
    def: &'static MetricDef,
    tags: &[(String, String)],
) -> Result<Threshold, ParseError> {
    c.skip_ws();
    let start = c.pos;
    let agg = if c.eat("p(") {
        let num_at = c.pos;
        let close = c
            .rest()
            .find(')')
            .ok_or_else(|| c.err(start, "`p(` without its closing `)`"))?;
        let n: f64 = c.rest()[..close]
            .trim()
            .parse()
            .map_err(|_| c.err(num_at, "a percentile is a number: p(95), p(99.9)"))?;
        if !(n > 0.0 && n <= 100.0) {
            return Err(c.err(num_at, "a percentile is between 0 and 100"));
        }
        c.pos += close + 1;
        Agg::P(n)
    } else {
        let word_len = c
            .rest()
            .find(|ch: char| !ch.is_ascii_alphabetic())
            .unwrap_or(c.rest().len());
        let word = &c.rest()[..word_len];
        let agg = match word {
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "med" => Agg::Med,
            "max" => Agg::Max,
            "count" => Agg::Count,
            "rate" => Agg::Rate,
            "value" => Agg::Value,
            "" => {
                return Err(c.err(
                    start,
                    "expected an aggregation: p(N), avg, min, med, max, count, rate or value",
                ));
            }
            w => {
                return Err(c.err(
                    start,
                    format!(
                        "unknown aggregation `{w}`: p(N), avg, min, med, max, count, rate or value"
                    ),
                ));
            }
        };
        c.pos += word_len;
        agg
    };
    let allowed: &[&str] = match def.kind {
        Kind::Trend => &["p(N)", "avg", "min", "med", "max", "count"],
        Kind::Rate => &["rate"],
        Kind::Counter => &["count", "rate"],
        Kind::Value => &["value"],
    };
    let fits = match (def.kind, agg) {
        (Kind::Trend, Agg::Rate | Agg::Value) => false,
        (Kind::Trend, _) => true,
        (Kind::Rate, a) => a == Agg::Rate,
        (Kind::Counter, a) => matches!(a, Agg::Count | Agg::Rate),
        (Kind::Value, a) => a == Agg::Value,
    };
    if !fits {
        return Err(c.err(
            start,
            format!("{} takes {}, not {agg}", def.name, allowed.join(", ")),
        ));
    }
    c.skip_ws();
    let op_at = c.pos;
    let op = if c.eat("<=") {
        Op::Le
    } else if c.eat(">=") {
        Op::Ge
    } else if c.eat("==") {
        Op::Eq
    } else if c.eat("!=") {
        Op::Ne
    } else if c.eat("<") {
        Op::Lt
    } else if c.eat(">") {
        Op::Gt
    } else {
        return Err(c.err(op_at, "expected a comparison: <, <=, >, >=, == or !="));
    };
    c.skip_ws();
    let num_at = c.pos;
    let num_len = c
        .rest()
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.' || ch == '-' || ch == '+' || ch == 'e'))
        .unwrap_or(c.rest().len());
    let number: f64 = c.rest()[..num_len]
        .parse()
        .map_err(|_| c.err(num_at, "expected a number"))?;
    if !number.is_finite() {
        return Err(c.err(num_at, "expected a finite number"));
    }
    c.pos += num_len;
    let unit_at = c.pos;
    let unit_len = c
        .rest()
        .find(|ch: char| !(ch.is_alphabetic() || ch == '%'))
        .unwrap_or(c.rest().len());
    let unit = &c.rest()[..unit_len];
    c.pos += unit_len;
    let timed = matches!(def.kind, Kind::Trend | Kind::Value) && agg != Agg::Count;
    let bound = match (unit, timed, def.kind, agg) {
        ("", _, _, _) => number,
        ("ms", true, _, _) => number,
        ("s", true, _, _) => number * 1000.0,
        ("m", true, _, _) => number * 60_000.0,
        ("us" | "µs", true, _, _) => number / 1000.0,
        ("%", _, Kind::Rate, _) => number / 100.0,
        (u, true, _, _) => {
            return Err(c.err(unit_at, format!("unknown unit `{u}`: us, ms, s or m")));
        }
        (u, false, Kind::Rate, _) => {
            return Err(c.err(
                unit_at,
                format!("`{u}`: a rate is a fraction (0.01) or a percentage (1%)"),
            ));
        }
        (u, false, _, _) => {
            return Err(c.err(unit_at, format!("`{u}`: {} {agg} has no unit", def.name)));
        }
    };
    if def.kind == Kind::Rate && !(0.0..=1.0).contains(&bound) {
        return Err(c.err(num_at, "a rate is between 0 and 1 (or 0% and 100%)"));
    }
    if bound < 0.0 {
        // `p(95)<-5` can never hold and `count>-1` always does: a typo.
        return Err(c.err(num_at, "no metric is negative: the bound is 0 or more"));
    }
    // ` over 1m`
    let save = c.pos;
    c.skip_ws();
    let window = if c.eat("over") {
        if !def.per_second {
            return Err(c.err(
                save,
                format!(
                    "{} cannot be judged per window (it is not measured second by second)",
                    def.name
                ),
            ));
        }
        if !tags.is_empty() {
            return Err(c.err(save, "windows apply to metrics without tags"));
        }
        c.skip_ws();
        let w_at = c.pos;
        let w_len = c
            .rest()
            .find(|ch: char| ch == ',' || ch.is_whitespace())
            .unwrap_or(c.rest().len());
        let d = crate::cli::parse_duration(&c.rest()[..w_len])
            .map_err(|e| c.err(w_at, format!("window: {e}")))?;
        if d < Duration::from_secs(1) || d.subsec_nanos() != 0 {
            return Err(c.err(w_at, "a window is a whole number of seconds, at least 1s"));
        }
        c.pos += w_len;
        Some(d)
    } else {
        c.pos = save;
        None
    };
    let selector = selector_text(def, tags);
    let expr = c.s[start..c.pos]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Threshold {
        source: format!("{selector}: {expr}"),
        metric: def,
        tags: tags.to_vec(),
        agg,
        op,
        bound,
        window,
        abort_on_fail: false,
        delay_abort: Duration::ZERO,
    })
}

/// ` (did you mean X?)` for the closest name, when close.
fn suggest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> String {
    let best = names
        .map(|n| (edit_distance(name, n), n))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, n)) if d <= 3 => format!(" (did you mean {n}?)"),
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Threshold {
        let mut v = parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn col(s: &str) -> (usize, String) {
        let e = parse(s).unwrap_err();
        (e.column, e.message)
    }

    #[test]
    fn good_expressions() {
        let t = one("http_req_duration: p(95)<500");
        assert_eq!((t.agg, t.op, t.bound), (Agg::P(95.0), Op::Lt, 500.0));
        assert_eq!(t.source, "http_req_duration: p(95)<500");
        assert_eq!(one("http_req_duration: p(99.9) <= 1.5s").bound, 1500.0);
        assert_eq!(one("http_req_duration: avg<500ms").bound, 500.0);
        assert_eq!(one("http_req_duration: max < 2m").bound, 120_000.0);
        assert_eq!(one("generator_lag: p(99)<800us").bound, 0.8);
        assert_eq!(one("http_req_failed: rate<0.01").bound, 0.01);
        assert_eq!(one("http_req_failed: rate<1%").bound, 0.01);
        assert_eq!(one("http_reqs: rate>100").agg, Agg::Rate);
        assert_eq!(one("http_reqs: count>=1000").op, Op::Ge);
        assert_eq!(one("checks: rate>0.99").metric.name, "checks");
        assert_eq!(one("recovery_time: value<120s").bound, 120_000.0);
        let t = one("http_req_duration{endpoint:GET /api/v1/products/{id},tenant:acme}: p(99)<800");
        assert_eq!(
            t.tags,
            vec![
                (
                    "endpoint".to_string(),
                    "GET /api/v1/products/{id}".to_string()
                ),
                ("tenant".to_string(), "acme".to_string())
            ]
        );
        assert_eq!(
            t.source,
            "http_req_duration{endpoint:GET /api/v1/products/{id},tenant:acme}: p(99)<800"
        );
        let w = one("http_req_duration: p(95)<500 over 1m");
        assert_eq!(w.window, Some(Duration::from_secs(60)));
        assert_eq!(w.source, "http_req_duration: p(95)<500 over 1m");
        let several = parse("http_req_duration: p(95)<500, p(99)<800 over 30s, avg<200").unwrap();
        assert_eq!(several.len(), 3);
        assert_eq!(several[1].window, Some(Duration::from_secs(30)));
        assert_eq!(
            parse_selector("http_req_failed{tenant:acme}").unwrap().1,
            vec![("tenant".to_string(), "acme".to_string())]
        );
    }

    #[test]
    fn mistakes_point_at_their_column() {
        let (c, m) = col("http_req_durtion: p(95)<500");
        assert_eq!(c, 1);
        assert!(
            m.contains("unknown metric `http_req_durtion` (did you mean http_req_duration?)"),
            "{m}"
        );
        let (c, m) = col("http_req_duration{tenat:acme}: p(95)<500");
        assert_eq!(c, 19);
        assert!(m.contains("unknown tag `tenat`"), "{m}");
        let (c, m) = col("http_req_duration: p(95)<<500");
        assert_eq!((c, m.as_str()), (26, "expected a number"));
        let (c, m) = col("http_req_duration: p95<500");
        assert_eq!(c, 20);
        assert!(m.contains("unknown aggregation `p`"), "{m}");
        let (c, m) = col("http_req_duration: p(95)=500");
        assert_eq!(c, 25);
        assert!(m.contains("expected a comparison"), "{m}");
        let (c, m) = col("http_req_duration: p(95)<500 parsecs");
        assert_eq!(c, 30);
        assert!(m.contains("expected `,`"), "{m}");
        let (c, m) = col("http_req_duration: p(95)<500xs");
        assert_eq!(c, 29);
        assert!(m.contains("unknown unit `xs`"), "{m}");
        let (c, m) = col("http_req_failed: p(95)<0.1");
        assert_eq!(c, 18);
        assert!(m.contains("takes rate"), "{m}");
        let (_, m) = col("http_req_failed: rate<5");
        assert!(m.contains("between 0 and 1"), "{m}");
        let (c, m) = col("http_req_duration: p(95)<-5");
        assert_eq!(c, 26);
        assert!(m.contains("no metric is negative"), "{m}");
        let (_, m) = col("http_req_duration p(95)<500");
        assert!(m.contains("expected `:`"), "{m}");
        let (_, m) = col("http_req_duration{tenant:acme: p(95)<500");
        assert!(m.contains("without its closing"), "{m}");
        let (_, m) = col("http_req_waiting: p(95)<500 over 1m");
        assert!(m.contains("cannot be judged per window"), "{m}");
        let (_, m) = col("http_req_duration{tenant:a}: p(95)<500 over 1m");
        assert!(m.contains("without tags"), "{m}");
        let (_, m) = col("http_req_duration: p(95)<500 over 1.5s");
        assert!(m.contains("whole number"), "{m}");
        let (_, m) = col("generator_lag{tenant:a}: p(95)<5");
        assert!(m.contains("generator_lag has tags stage"), "{m}");
        let (_, m) = col("session_duration{tenant:a}: p(95)<5");
        assert!(m.contains("session_duration has no tags"), "{m}");
        let (_, m) = col("http_req_duration: p(0)<5");
        assert!(m.contains("between 0 and 100"), "{m}");
        let e = parse("http_req_durtion: p(95)<500")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("    http_req_durtion: p(95)<500\n    ^"), "{e}");
    }

    #[test]
    fn comparisons() {
        assert!(Op::Lt.holds(1.0, 2.0) && !Op::Lt.holds(2.0, 2.0));
        assert!(Op::Le.holds(2.0, 2.0) && Op::Ge.holds(2.0, 2.0));
        assert!(Op::Gt.holds(3.0, 2.0) && Op::Ne.holds(3.0, 2.0) && Op::Eq.holds(2.0, 2.0));
    }
}
