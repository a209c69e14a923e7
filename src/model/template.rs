//! Path templating: `/orders/8812/items/3` → `/orders/{id}/items/{id}`.
//!
//! Path segments (and query values) that are identifiers — numbers, UUIDs,
//! hex ids and hashes, e-mail addresses, dates, long opaque tokens, codes like
//! `sku-12345` — become typed slots; their recorded values go to value pools
//! named after the resource they follow (`orders.id`), so `/orders/{id}` and
//! `/orders/{id}/items` draw order ids from the same pool. User rules
//! (`--slot NAME=REGEX`) are tried first.

use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The type of a templated value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlotKind {
    Id,
    Uuid,
    Hash,
    Hex,
    Email,
    Date,
    Token,
    /// Letters and digits mixed (`sku-12345`, `AA-409111`, `200x200`).
    Code,
    /// Free text (search terms, percent-encoded words); query values that
    /// are none of the above.
    Text,
    /// The tenant itself, placed where the capture had it.
    Tenant,
    /// A credential-looking value (a JWT in a path): never pooled; replay
    /// makes up a value of the same shape.
    Secret,
    /// A user rule's name.
    Custom(String),
}

impl SlotKind {
    pub fn name(&self) -> &str {
        match self {
            SlotKind::Id => "id",
            SlotKind::Uuid => "uuid",
            SlotKind::Hash => "hash",
            SlotKind::Hex => "hex",
            SlotKind::Email => "email",
            SlotKind::Date => "date",
            SlotKind::Token => "token",
            SlotKind::Code => "code",
            SlotKind::Text => "text",
            SlotKind::Tenant => "tenant",
            SlotKind::Secret => "secret",
            SlotKind::Custom(n) => n,
        }
    }

    fn from_name(s: &str) -> SlotKind {
        match s {
            "id" => SlotKind::Id,
            "uuid" => SlotKind::Uuid,
            "hash" => SlotKind::Hash,
            "hex" => SlotKind::Hex,
            "email" => SlotKind::Email,
            "date" => SlotKind::Date,
            "token" => SlotKind::Token,
            "code" => SlotKind::Code,
            "text" => SlotKind::Text,
            "tenant" => SlotKind::Tenant,
            "secret" => SlotKind::Secret,
            other => SlotKind::Custom(other.to_string()),
        }
    }
}

impl fmt::Display for SlotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for SlotKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for SlotKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SlotKind::from_name(&String::deserialize(d)?))
    }
}

/// A user templating rule: `NAME=REGEX`, matched against whole segments.
#[derive(Clone, Debug)]
pub struct SlotRule {
    pub name: String,
    regex: Regex,
    source: String,
}

impl FromStr for SlotRule {
    type Err = String;
    fn from_str(s: &str) -> Result<SlotRule, String> {
        let (name, re) = s
            .split_once('=')
            .ok_or_else(|| format!("--slot `{s}`: expected NAME=REGEX"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "--slot `{s}`: the name must be letters, digits, - or _"
            ));
        }
        let regex = Regex::new(&format!("^(?:{re})$")).map_err(|e| format!("--slot `{s}`: {e}"))?;
        Ok(SlotRule {
            name: name.to_string(),
            regex,
            source: s.to_string(),
        })
    }
}

impl fmt::Display for SlotRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Bits per count in a [`CLASSES`] entry: six counts of up to 1023 fit a u64.
const CLASS_BITS: u32 = 10;

/// Per byte, the counts it adds to: digits, letters, hex letters, numeric
/// punctuation (`-_.,:`), token punctuation (`-_.=~`), anything else. Each
/// count has [`CLASS_BITS`] bits, so a segment's counts are one sum.
static CLASSES: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut c = 0;
    while c < 256 {
        let (digit, letter, hex, numeric, token, other) = match c as u8 {
            b'0'..=b'9' => (1, 0, 0, 0, 0, 0),
            b'a'..=b'f' | b'A'..=b'F' => (0, 1, 1, 0, 0, 0),
            b'g'..=b'z' | b'G'..=b'Z' => (0, 1, 0, 0, 0, 0),
            b'-' | b'_' | b'.' => (0, 0, 0, 1, 1, 0),
            b',' | b':' => (0, 0, 0, 1, 0, 0),
            b'=' | b'~' => (0, 0, 0, 0, 1, 0),
            _ => (0, 0, 0, 0, 0, 1),
        };
        t[c] = digit
            | letter << CLASS_BITS
            | hex << (2 * CLASS_BITS)
            | numeric << (3 * CLASS_BITS)
            | token << (4 * CLASS_BITS)
            | other << (5 * CLASS_BITS);
        c += 1;
    }
    t
};

/// Counts of digits, letters, hex letters, numeric punctuation, token
/// punctuation and other bytes: a table look-up and an add per byte (the
/// match it replaces was 6% of an import's instructions).
fn byte_classes(b: &[u8]) -> [usize; 6] {
    let mut counts = [0usize; 6];
    // Pieces short enough that no count overflows its bits.
    for piece in b.chunks(MAX_SUMMED) {
        let sum = piece.iter().fold(0u64, |a, &c| a + CLASSES[usize::from(c)]);
        for (n, m) in counts.iter_mut().zip(unpack(sum)) {
            *n += m;
        }
    }
    counts
}

/// The most bytes whose [`CLASSES`] entries can be summed without a count
/// overflowing its bits.
const MAX_SUMMED: usize = (1 << CLASS_BITS) - 1;

/// The counts in a sum of [`CLASSES`] entries.
fn unpack(sum: u64) -> [usize; 6] {
    std::array::from_fn(|i| ((sum >> (i as u32 * CLASS_BITS)) & ((1 << CLASS_BITS) - 1)) as usize)
}

/// What kind of identifier `seg` is, if it is one.
pub fn classify(seg: &str, rules: &[SlotRule]) -> Option<SlotKind> {
    classify_counted(seg, rules, byte_classes(seg.as_bytes()))
}

/// [`classify`], given `seg`'s [`byte_classes`].
fn classify_counted(seg: &str, rules: &[SlotRule], counts: [usize; 6]) -> Option<SlotKind> {
    if let Some(r) = rules.iter().find(|r| r.regex.is_match(seg)) {
        return Some(SlotKind::Custom(r.name.clone()));
    }
    let b = seg.as_bytes();
    if b.is_empty() {
        return None;
    }
    // Every decision below reads these counts.
    let [
        digits,
        letters,
        hex_letters,
        numeric_punct,
        token_punct,
        other,
    ] = counts;
    let n = b.len();
    if digits == n {
        return Some(SlotKind::Id);
    }
    // Plain words (most path segments): nothing to template.
    if digits == 0 && letters == n {
        return None;
    }
    if n == 36 && is_uuid(b) {
        return Some(SlotKind::Uuid);
    }
    if is_jwt(seg) {
        return Some(SlotKind::Secret);
    }
    if digits >= 8 && is_date(b) {
        return Some(SlotKind::Date);
    }
    if other > 0 && is_email(seg) {
        return Some(SlotKind::Email);
    }
    if digits + hex_letters == n {
        if n >= 16 {
            return Some(SlotKind::Hash);
        }
        if n >= 6 && digits > 0 && letters > 0 {
            return Some(SlotKind::Hex);
        }
    }
    // Numbers with separators: 6,681965 / 1.2.3 / 12-34.
    if digits >= 2 && digits + numeric_punct == n && letters == 0 {
        return Some(SlotKind::Id);
    }
    let token_chars = other == 0 && digits + letters + token_punct == n;
    if token_chars && token_punct > 0 && is_slug(seg) {
        return None;
    }
    if n >= 20 && token_chars && digits > 0 && letters > 0 {
        return Some(SlotKind::Token);
    }
    if token_chars && digits >= 3 && letters > 0 && n <= 40 {
        return Some(SlotKind::Code);
    }
    if other > 0 && has_encoded_text(b) {
        return Some(SlotKind::Text);
    }
    None
}

/// Words joined by `-`, `_` or `.` (`ssl-latency.html`,
/// `logstash-monitorama-2013`): a name a person chose, not an identifier.
fn is_slug(seg: &str) -> bool {
    let words = seg
        .split(['-', '_', '.'])
        .filter(|w| w.len() >= 3 && w.bytes().all(|c| c.is_ascii_lowercase()))
        .count();
    words >= 2
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_date(b: &[u8]) -> bool {
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

fn is_email(s: &str) -> bool {
    let b = s.as_bytes();
    let (user, domain) = match memchr::memchr(b'@', b) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => match memchr::memmem::find(b, b"%40") {
            Some(i) => (&b[..i], &b[i + 3..]),
            None => return false,
        },
    };
    // The user part as addresses write it (`+` tags, `%2B` when encoded),
    // and a domain of dotted labels ending in a name: `jquery@3.6.0` and
    // `${(#a=@org.apache...` are not addresses.
    let user_ok = !user.is_empty()
        && user
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(c));
    let labels: Vec<&[u8]> = domain.split(|c| *c == b'.').collect();
    let domain_ok = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic));
    user_ok && domain_ok
}

/// Three base64url parts, the first a JSON header (`eyJ`).
pub fn is_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.split('.').count() == 3 && s.len() > 30
}

/// Percent-encoded non-ASCII or spaces: words, not an identifier the path
/// is built from.
fn has_encoded_text(b: &[u8]) -> bool {
    b.windows(3).any(|w| {
        w[0] == b'%'
            && w[1].is_ascii_hexdigit()
            && w[2].is_ascii_hexdigit()
            && (w[1] >= b'8' || w[1..] == *b"20")
    })
}

/// A templated path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Templated {
    /// `/orders/{id}/items/{id}`
    pub path: String,
    pub slots: Vec<Slot>,
}

/// One slot of a templated path and the value it had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Index among the `/`-separated parts of the path (0 is before the
    /// leading slash).
    pub segment: usize,
    pub kind: SlotKind,
    pub pool: String,
    pub value: String,
}

/// A slot's value, borrowed from the path it was found in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotValue<'a> {
    pub segment: usize,
    pub kind: SlotKind,
    pub value: &'a str,
}

/// Templates `path` into `out` (appended) and `slots` (the allocation-free
/// form of [`template_path`], for the import loop). `tenant_segment` is the
/// (1-based, non-empty) segment that held the tenant, if the tenant came from
/// the path. Matrix parameters (`;jsessionid=...`) are dropped.
pub fn template_into<'a>(
    path: &'a str,
    tenant_segment: Option<usize>,
    rules: &[SlotRule],
    out: &mut String,
    slots: &mut impl Extend<SlotValue<'a>>,
) {
    let start = out.len();
    let mut nonempty = 0;
    let bytes = path.as_bytes();
    let (mut from, mut i, mut last) = (0, 0, false);
    while !last {
        // One pass finds the segment's end and its first `;` (matrix
        // parameters are not part of the segment), and sums the classes of
        // its bytes for `classify` (a second pass over the segment was 3%
        // of the import's instructions). Segments are short: a plain byte
        // loop beats memchr's setup here.
        let (begin, mut end, mut semi) = (from, from, usize::MAX);
        let mut sum = 0u64;
        while end < bytes.len() {
            let c = bytes[end];
            if c == b'/' {
                break;
            }
            if c == b';' && semi == usize::MAX {
                semi = end;
            }
            sum = sum.wrapping_add(CLASSES[usize::from(c)]);
            end += 1;
        }
        last = end >= bytes.len();
        from = end + 1;
        if i > 0 {
            out.push('/');
        }
        let seg = &path[begin..semi.min(end)];
        let segment = i;
        i += 1;
        if seg.is_empty() {
            continue;
        }
        nonempty += 1;
        let kind = if tenant_segment == Some(nonempty) {
            Some(SlotKind::Tenant)
        } else if semi == usize::MAX && seg.len() <= MAX_SUMMED {
            classify_counted(seg, rules, unpack(sum))
        } else {
            // Cut short at a `;`, or too long for the sum to hold.
            classify(seg, rules)
        };
        match kind {
            Some(kind) => {
                out.push('{');
                out.push_str(kind.name());
                out.push('}');
                slots.extend([SlotValue {
                    segment,
                    kind,
                    value: seg,
                }]);
            }
            None => out.push_str(seg),
        }
    }
    if out.len() == start {
        out.push('/');
    }
}

/// The pool names of a template's slots: the literal segment before each
/// slot and the slot's kind (`orders.id`), `root.<kind>` when no literal
/// precedes, `#2`, `#3` for repeats.
pub fn pool_names(template: &str, slots: &[(usize, &SlotKind)]) -> Vec<String> {
    let parts: Vec<&str> = template.split('/').collect();
    let mut names: Vec<String> = Vec::with_capacity(slots.len());
    for &(segment, kind) in slots {
        let prev = parts[..segment.min(parts.len())]
            .iter()
            .enumerate()
            .rev()
            .find(|(i, p)| !p.is_empty() && !slots.iter().any(|(s, _)| s == i))
            .map_or("root", |(_, p)| p);
        let base = format!("{prev}.{}", kind.name());
        let n = names
            .iter()
            .filter(|p| **p == base || p.starts_with(&format!("{base}#")))
            .count();
        names.push(if n == 0 {
            base
        } else {
            format!("{base}#{}", n + 1)
        });
    }
    names
}

/// Templates `path`, with pool names (see [`template_into`]).
pub fn template_path(path: &str, tenant_segment: Option<usize>, rules: &[SlotRule]) -> Templated {
    let mut out = String::with_capacity(path.len());
    let mut values: Vec<SlotValue> = Vec::new();
    template_into(path, tenant_segment, rules, &mut out, &mut values);
    let keys: Vec<(usize, &SlotKind)> = values.iter().map(|v| (v.segment, &v.kind)).collect();
    let pools = pool_names(&out, &keys);
    let slots = values
        .iter()
        .zip(pools)
        .map(|(v, pool)| Slot {
            segment: v.segment,
            kind: v.kind.clone(),
            pool,
            value: v.value.to_string(),
        })
        .collect();
    Templated { path: out, slots }
}

/// Static assets (images, stylesheets, scripts, fonts, media), by file
/// extension or response type.
pub fn is_asset(path: &str, response_type: Option<&str>) -> bool {
    let last = match memchr::memrchr(b'/', path.as_bytes()) {
        Some(i) => &path.as_bytes()[i + 1..],
        None => path.as_bytes(),
    };
    // An extension of 2 to 5 bytes has its dot among the last six: only
    // those are looked at (this runs for every request).
    let tail = &last[last.len().saturating_sub(6)..];
    if let Some(i) = tail.iter().rposition(|&c| c == b'.') {
        let ext = &tail[i + 1..];
        if (2..=5).contains(&ext.len()) {
            let mut lower = [0u8; 5];
            for (d, s) in lower.iter_mut().zip(ext) {
                *d = s.to_ascii_lowercase();
            }
            if matches!(
                &lower[..ext.len()],
                b"png"
                    | b"jpg"
                    | b"jpeg"
                    | b"gif"
                    | b"webp"
                    | b"avif"
                    | b"svg"
                    | b"ico"
                    | b"bmp"
                    | b"css"
                    | b"js"
                    | b"mjs"
                    | b"map"
                    | b"woff"
                    | b"woff2"
                    | b"ttf"
                    | b"otf"
                    | b"eot"
                    | b"mp4"
                    | b"webm"
                    | b"mp3"
                    | b"ogg"
                    | b"wav"
                    | b"swf"
            ) {
                return true;
            }
        }
    }
    let Some(t) = response_type else { return false };
    let t = t.trim();
    [
        "image/",
        "font/",
        "video/",
        "audio/",
        "text/css",
        "application/javascript",
        "text/javascript",
        "application/font",
    ]
    .iter()
    .any(|p| t.len() >= p.len() && t.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str) -> String {
        template_path(p, None, &[]).path
    }

    #[test]
    fn byte_classes_count_what_a_plain_match_counts() {
        let all: Vec<u8> = (0..=255u8).collect();
        // Every byte, and segments longer than one count's bits can hold.
        for b in [&all[..], &[b'7'; 3000][..], &all.repeat(9)[..], b""] {
            let mut want = [0usize; 6];
            for &c in b {
                match c {
                    b'0'..=b'9' => want[0] += 1,
                    b'a'..=b'f' | b'A'..=b'F' => {
                        want[1] += 1;
                        want[2] += 1;
                    }
                    b'g'..=b'z' | b'G'..=b'Z' => want[1] += 1,
                    b'-' | b'_' | b'.' => {
                        want[3] += 1;
                        want[4] += 1;
                    }
                    b',' | b':' => want[3] += 1,
                    b'=' | b'~' => want[4] += 1,
                    _ => want[5] += 1,
                }
            }
            assert_eq!(byte_classes(b), want, "{} bytes", b.len());
        }
    }

    #[test]
    fn identifiers_become_slots() {
        assert_eq!(t("/orders/8812/items/3"), "/orders/{id}/items/{id}");
        assert_eq!(t("/u/123e4567-e89b-12d3-a456-426614174000"), "/u/{uuid}");
        assert_eq!(t("/c/5f2b6c0e9d1a4b3c2d1e0f9a"), "/c/{hash}");
        assert_eq!(t("/c/a1b2c3"), "/c/{hex}");
        assert_eq!(t("/users/bob@example.com/"), "/users/{email}/");
        assert_eq!(t("/users/bob.smith%2Bqa%40example.co.uk"), "/users/{email}");
        // An `@` does not make an address.
        assert_ne!(t("/npm/jquery@3.6.0"), "/npm/{email}");
        assert_ne!(
            t("/%24%7B%28%23a%3D%40org.apache.commons%29%7D/"),
            "/{email}/"
        );
        assert_eq!(t("/reports/2024-05-01"), "/reports/{date}");
        assert_eq!(t("/r/Ab3dEf9hIj2LmN0pQr5tUv"), "/r/{token}");
        assert_eq!(t("/issue/AA-409111"), "/issue/{code}");
        assert_eq!(t("/hello/world/6,681965"), "/hello/world/{id}");
        assert_eq!(t("/filter/b113"), "/filter/{code}");
        assert_eq!(t("/html5/oauth2"), "/html5/oauth2");
        assert_eq!(
            t("/blog/disabling-battery-in-ubuntu-vms.html"),
            "/blog/disabling-battery-in-ubuntu-vms.html"
        );
        assert_eq!(
            t("/p/logstash-monitorama-2013/"),
            "/p/logstash-monitorama-2013/"
        );
        assert_eq!(t("/api/v2/health"), "/api/v2/health");
        assert_eq!(t("/about/facade"), "/about/facade");
        assert_eq!(t("/"), "/");
        assert_eq!(t(""), "/");
        assert_eq!(t("/login;jsessionid=ABC"), "/login");
    }

    /// Templating sums byte classes while it looks for the segment's end;
    /// each segment must be classified as `classify` does it alone: cut
    /// at a `;`, longer than the sum can hold, or with every byte value.
    #[test]
    fn templating_classifies_each_segment_as_classify_does() {
        // Every ASCII byte but the separators, and some that are not ASCII.
        let all: String = (1..=127u8)
            .map(char::from)
            .filter(|&c| c != '/' && c != ';')
            .chain("é€😀".chars())
            .collect();
        let long_id = "7".repeat(3000);
        let long_code = "ab12".repeat(400);
        // Either side of the longest segment the sum may count.
        let (id_1023, id_1024) = ("7".repeat(1023), "7".repeat(1024));
        let code_1023 = format!("{}{}", "a".repeat(1000), "1".repeat(23));
        let segments = [
            id_1023.as_str(),
            id_1024.as_str(),
            code_1023.as_str(),
            "caf\u{e9}-2024",
            "8812",
            "a1b2c3",
            "2024-05-01x",
            "12;jsessionid=abc",
            "abc;x=1",
            ";x=1",
            long_id.as_str(),
            long_code.as_str(),
            all.as_str(),
            "caf%C3%A9",
            "Ab3dEf9hIj2LmN0pQr5tUv",
        ];
        for seg in segments {
            let path = format!("/x/{seg}/y");
            let slots = template_path(&path, None, &[]).slots;
            let cut = &seg[..seg.find(';').unwrap_or(seg.len())];
            let want = classify(cut, &[]);
            let got = slots
                .iter()
                .find(|s| s.segment == 2)
                .map(|s| s.kind.clone());
            assert_eq!(got, want, "segment {:.40}", seg);
        }
    }

    #[test]
    fn pools_follow_the_resource() {
        let x = template_path("/orders/8812/items/3", None, &[]);
        let pools: Vec<_> = x
            .slots
            .iter()
            .map(|s| (s.pool.as_str(), s.value.as_str(), s.segment))
            .collect();
        assert_eq!(pools, vec![("orders.id", "8812", 2), ("items.id", "3", 4)]);
        let y = template_path("/compare/1/2", None, &[]);
        assert_eq!(y.slots[1].pool, "compare.id#2");
    }

    #[test]
    fn tenant_and_custom_rules() {
        let rules = vec!["sku=[A-Z]{3}[0-9]{2}".parse::<SlotRule>().unwrap()];
        let x = template_path("/t/acme/products/ABC12", Some(2), &rules);
        assert_eq!(x.path, "/t/{tenant}/products/{sku}");
        assert!("=x".parse::<SlotRule>().is_err());
        assert!("a=(".parse::<SlotRule>().is_err());
    }

    #[test]
    fn assets() {
        assert!(is_asset("/static/app.JS", None));
        assert!(is_asset("/f/x.woff2", None));
        assert!(is_asset("/.js", None));
        assert!(is_asset("js.a/b.css", None));
        assert!(!is_asset("/img.png/x", None));
        assert!(!is_asset("/x.png.bak", None));
        assert!(!is_asset("/x.j", None));
        assert!(!is_asset("/a.css.longer", None));
        assert!(!is_asset(
            "/orders/1b67e4ad-2e5f-4321-bb3e-07bbffc9e1b5",
            None
        ));
        assert!(is_asset("/x", Some("image/png")));
        assert!(!is_asset("/api/items", Some("application/json")));
    }
}
