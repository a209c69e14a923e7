//! HTTP/1.x message heads: parsed by httparse, leniently (real servers and
//! clients are not all strict), and how the body after one is framed.

/// Most header lines read in a head.
pub const MAX_HEADERS: usize = 128;

/// A parsed message head.
pub struct Head<'a> {
    /// Request method (requests only).
    pub method: &'a str,
    /// Request target (requests only).
    pub target: &'a str,
    /// Status code (responses only).
    pub status: u16,
    pub headers: &'a [httparse::Header<'a>],
}

impl Head<'_> {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// How the body is framed by the head alone: chunked wins over a length.
    pub fn framing(&self, otherwise: Framing) -> Framing {
        let chunked = self
            .headers
            .iter()
            .rfind(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
            .is_some_and(|h| {
                let v = h.value.trim_ascii_end();
                v.len() >= 7 && v[v.len() - 7..].eq_ignore_ascii_case(b"chunked")
            });
        if chunked {
            return Framing::Chunked;
        }
        match self.header("content-length").map(parse_length) {
            Some(Some(n)) => Framing::Length(n),
            _ => otherwise,
        }
    }
}

fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    // Repeated identical values (`5, 5`) are allowed; take the first.
    let first = v.split(|&b| b == b',').next()?.trim_ascii();
    if first.is_empty() || first.len() > 18 || !first.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(first.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// How a body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes.
    UntilClose,
    /// The message ends with its head and the connection stops being HTTP
    /// (101 Switching Protocols, a CONNECT tunnel).
    Tunnel,
}

/// The end of a head (after its blank line) in `b`, looking from `from`.
pub fn head_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(j) = memchr::memchr(b'\n', &b[i..]) {
        let nl = i + j;
        match b.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if b.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

fn config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

pub fn parse_request<'h, 'b>(
    bytes: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Option<Head<'h>>
where
    'b: 'h,
{
    let mut req = httparse::Request::new(headers);
    match config().parse_request(&mut req, bytes) {
        Ok(httparse::Status::Complete(_)) => Some(Head {
            method: req.method?,
            target: req.path?,
            status: 0,
            headers: req.headers,
        }),
        _ => None,
    }
}

pub fn parse_response<'h, 'b>(
    bytes: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Option<Head<'h>>
where
    'b: 'h,
{
    let mut resp = httparse::Response::new(headers);
    match config().parse_response(&mut resp, bytes) {
        Ok(httparse::Status::Complete(_)) => Some(Head {
            method: "",
            target: "",
            status: resp.code?,
            headers: resp.headers,
        }),
        _ => None,
    }
}
