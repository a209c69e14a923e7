//! Finding the entries of a HAR document in a stream of bytes.
//!
//! A HAR file is one JSON document; its `log.entries` array is what matters
//! and can be gigabytes long. The scanner walks the document's outer
//! structure itself — `{ "log": { ..., "entries": [ e, e, ... ], ... } }` —
//! and hands out each entry's bytes whole, reading more only as it goes, so
//! entries can be parsed with `serde_json::from_slice` (fast) one at a time,
//! or many at once on several threads. Everything outside the entries is
//! still checked as JSON; a syntax error anywhere is reported with its line
//! and column.

use std::io::Read;

use serde::de::IgnoredAny;

use crate::capture::CaptureError;

/// Bytes read at a time.
const READ: usize = 1 << 20;

/// Where an entry starts, for pointing at errors inside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub line: usize,
    pub column: usize,
}

impl Place {
    /// The place of a position `(line, column)` reported relative to the
    /// start of a value that begins here.
    pub fn offset(self, line: usize, column: usize) -> Place {
        if line <= 1 {
            Place {
                line: self.line,
                column: self.column + column.saturating_sub(1),
            }
        } else {
            Place {
                line: self.line + line - 1,
                column,
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Before the document.
    Start,
    /// Inside `log.entries`, before the first element.
    First,
    /// Inside `log.entries`, after an element.
    Next,
    /// After `log.entries` (or there is none).
    Done,
}

/// Walks a HAR document, yielding the bytes of each entry.
pub struct Scanner<R> {
    r: R,
    path: String,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Line and column of `buf[0]`.
    origin: Place,
    state: State,
    /// Nesting of the objects being walked: "root", then "log".
    depth: usize,
    found: bool,
}

impl<R: Read> Scanner<R> {
    pub fn new(r: R, path: &str) -> Scanner<R> {
        Scanner {
            r,
            path: path.to_string(),
            buf: Vec::with_capacity(READ),
            pos: 0,
            eof: false,
            origin: Place { line: 1, column: 1 },
            state: State::Start,
            depth: 0,
            found: false,
        }
    }

    /// Whether the document had a `log.entries` array (known at the end).
    pub fn found_entries(&self) -> bool {
        self.found
    }

    /// The place of byte `at` of the buffer.
    fn place(&self, at: usize) -> Place {
        let before = &self.buf[..at.min(self.buf.len())];
        let lines = memchr::memchr_iter(b'\n', before).count();
        match memchr::memrchr(b'\n', before) {
            Some(nl) => Place {
                line: self.origin.line + lines,
                column: at - nl,
            },
            None => Place {
                line: self.origin.line,
                column: self.origin.column + at,
            },
        }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> CaptureError {
        let p = self.place(at);
        CaptureError::Syntax {
            path: self.path.clone(),
            line: p.line,
            column: p.column,
            message: format!("broken HAR JSON: {}", message.into()),
        }
    }

    fn io(&self, source: std::io::Error) -> CaptureError {
        CaptureError::Io {
            path: self.path.clone(),
            error: source,
        }
    }

    /// Drops the bytes before `keep` and reads more; false at the end of
    /// the input.
    fn fill(&mut self, keep: usize) -> Result<bool, CaptureError> {
        if self.eof {
            return Ok(false);
        }
        if keep > 0 {
            self.origin = self.place(keep);
            self.buf.drain(..keep);
            self.pos -= keep;
        }
        let had = self.buf.len();
        (&mut self.r)
            .take(READ as u64)
            .read_to_end(&mut self.buf)
            .map_err(|e| self.io(e))?;
        if self.buf.len() == had {
            self.eof = true;
            return Ok(false);
        }
        if had == 0
            && self.origin == (Place { line: 1, column: 1 })
            && self.buf.starts_with(b"\xEF\xBB\xBF")
        {
            self.buf.drain(..3);
        }
        Ok(true)
    }

    /// The byte at `pos`, reading more if needed (keeping from `pos`).
    fn peek(&mut self) -> Result<Option<u8>, CaptureError> {
        while self.pos >= self.buf.len() {
            if !self.fill(self.pos)? {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[self.pos]))
    }

    fn skip_ws(&mut self) -> Result<Option<u8>, CaptureError> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\n' | b'\r' | b'\t') => self.pos += 1,
                other => return Ok(other),
            }
        }
    }

    fn expect(&mut self, want: &[u8], what: &str) -> Result<u8, CaptureError> {
        match self.skip_ws()? {
            Some(c) if want.contains(&c) => {
                self.pos += 1;
                Ok(c)
            }
            Some(_) => Err(self.error(self.pos, format!("expected {what}"))),
            None => Err(self.error(
                self.pos,
                format!("unexpected end of input; expected {what}"),
            )),
        }
    }

    /// Ensures `buf[at]` is loaded, keeping everything from `keep`.
    fn have(&mut self, at: &mut usize, keep: &mut usize) -> Result<bool, CaptureError> {
        while *at >= self.buf.len() {
            let k = *keep;
            if !self.fill(k)? {
                return Ok(false);
            }
            *at -= k;
            *keep = 0;
        }
        Ok(true)
    }

    /// The end of the value that starts at `pos` (exclusive); may read more
    /// input, moving the buffer so the value starts at index 0 or later.
    fn value(&mut self) -> Result<(usize, usize), CaptureError> {
        let mut start = self.pos;
        let mut i = start;
        let mut depth = 0usize;
        loop {
            if !self.have(&mut i, &mut start)? {
                return Err(self.error(i, "unexpected end of input inside a value"));
            }
            match self.buf[i] {
                b'"' => {
                    i += 1;
                    loop {
                        if !self.have(&mut i, &mut start)? {
                            return Err(self.error(i, "unexpected end of input inside a string"));
                        }
                        match memchr::memchr2(b'"', b'\\', &self.buf[i..]) {
                            Some(off) if self.buf[i + off] == b'\\' => i += off + 2,
                            Some(off) => {
                                i += off + 1;
                                break;
                            }
                            None => i = self.buf.len(),
                        }
                    }
                    if depth == 0 {
                        break;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                b',' | b' ' | b'\n' | b'\r' | b'\t' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        self.pos = start;
        if i == start {
            return Err(self.error(start, "expected a value"));
        }
        Ok((start, i))
    }

    /// A key string (the bytes between the quotes; escapes are rare in HAR
    /// keys and compared as they are).
    fn key(&mut self) -> Result<Vec<u8>, CaptureError> {
        let (a, b) = self.value()?;
        if self.buf[a] != b'"' {
            return Err(self.error(a, "expected a string key"));
        }
        self.pos = b;
        Ok(self.buf[a + 1..b - 1].to_vec())
    }

    /// Skips a value, checking that it is valid JSON.
    fn skip_value(&mut self) -> Result<(), CaptureError> {
        self.skip_ws()?;
        let (a, b) = self.value()?;
        let at = self.place(a);
        serde_json::from_slice::<IgnoredAny>(&self.buf[a..b])
            .map_err(|e| self.json_error(at, &e))?;
        self.pos = b;
        Ok(())
    }

    /// A serde error inside a value that starts at `at`, placed in the file.
    pub fn json_error(&self, at: Place, e: &serde_json::Error) -> CaptureError {
        syntax_error(&self.path, at, e)
    }

    /// Walks object members until `"want"` is the next key (its `:` read),
    /// or the object ends (false).
    fn find_key(&mut self, want: &[u8], mut first: bool) -> Result<bool, CaptureError> {
        loop {
            let c = if first {
                self.expect(b"\"}", "a key or `}`")?
            } else {
                self.expect(b",}", "`,` or `}`")?
            };
            first = false;
            if c == b'}' {
                return Ok(false);
            }
            if c == b',' {
                self.skip_ws()?;
            } else {
                self.pos -= 1;
            }
            let key = self.key()?;
            self.expect(b":", "`:`")?;
            if key == want {
                return Ok(true);
            }
            self.skip_value()?;
        }
    }

    /// Finishes the objects left open and checks the end of the input.
    fn close(&mut self) -> Result<(), CaptureError> {
        while self.depth > 0 {
            if self.find_key(b"\0", false)? {
                unreachable!("no key is NUL");
            }
            self.depth -= 1;
        }
        match self.skip_ws()? {
            None => Ok(()),
            Some(_) => Err(self.error(self.pos, "trailing characters after the document")),
        }
    }

    /// The next entry's bytes and where it starts; `None` after the last.
    pub fn next_entry(&mut self) -> Result<Option<(&[u8], Place)>, CaptureError> {
        if self.state == State::Start {
            self.expect(b"{", "a JSON object")?;
            self.depth = 1;
            let mut entries = false;
            if self.find_key(b"log", true)? {
                self.expect(b"{", "the `log` object")?;
                self.depth = 2;
                if self.find_key(b"entries", true)? {
                    self.expect(b"[", "the `entries` array")?;
                    entries = true;
                }
            }
            self.found = entries;
            if !entries {
                // `find_key` ended an object: the one the key was missing in.
                self.depth -= 1;
            }
            self.state = if entries { State::First } else { State::Done };
        }
        match self.state {
            State::First => {
                if self.skip_ws()? == Some(b']') {
                    self.pos += 1;
                    self.state = State::Done;
                    self.close()?;
                    return Ok(None);
                }
            }
            State::Next => {
                if self.expect(b",]", "`,` or `]`")? == b']' {
                    self.state = State::Done;
                    self.close()?;
                    return Ok(None);
                }
                self.skip_ws()?;
            }
            State::Done => {
                self.close()?;
                return Ok(None);
            }
            State::Start => unreachable!(),
        }
        let (a, b) = self.value()?;
        self.pos = b;
        self.state = State::Next;
        let at = self.place(a);
        Ok(Some((&self.buf[a..b], at)))
    }
}

/// A serde error inside a value that starts at `at`, placed in the file.
pub fn syntax_error(path: &str, at: Place, e: &serde_json::Error) -> CaptureError {
    let msg = e.to_string();
    let message = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let p = at.offset(e.line(), e.column());
    CaptureError::Syntax {
        path: path.into(),
        line: p.line,
        column: p.column,
        message: format!("broken HAR JSON: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(doc: &str) -> Result<Vec<String>, CaptureError> {
        let mut s = Scanner::new(doc.as_bytes(), "t.har");
        let mut out = Vec::new();
        while let Some((e, _)) = s.next_entry()? {
            out.push(String::from_utf8(e.to_vec()).unwrap());
        }
        Ok(out)
    }

    #[test]
    fn finds_entries_wherever_they_are() {
        let doc = r#"{"x": [1, {"a": "}]"}], "log": {"pages": [], "entries": [ {"a":1} , {"b":"x\"]"}, 3 ], "z": null}}"#;
        assert_eq!(
            entries(doc).unwrap(),
            vec![r#"{"a":1}"#, r#"{"b":"x\"]"}"#, "3"]
        );
        assert_eq!(
            entries(r#"{"log": {"entries": []}}"#).unwrap(),
            Vec::<String>::new()
        );
        let mut s = Scanner::new(&b"{\"log\": {\"version\": \"1.2\"}}"[..], "t");
        assert!(s.next_entry().unwrap().is_none());
        assert!(!s.found_entries());
    }

    #[test]
    fn errors_have_places() {
        let e = entries("{\n  \"log\": {\n    \"version\": \"1.1\"\n    xxx\n  }\n}").unwrap_err();
        match e {
            CaptureError::Syntax { line, column, .. } => assert_eq!((line, column), (4, 5)),
            e => panic!("{e}"),
        }
        let e = entries("{\"log\": {\"pages\": [1 2], \"entries\": []}}").unwrap_err();
        assert!(matches!(e, CaptureError::Syntax { line: 1, .. }), "{e}");
        assert!(entries("{\"log\": {\"entries\": [{}").is_err());
        assert!(entries("{\"log\": {\"entries\": []}} trailing").is_err());
    }

    #[test]
    fn large_values_span_reads() {
        let big = "x".repeat(3 * READ);
        let doc = format!("{{\"log\": {{\"entries\": [{{\"t\": \"{big}\"}}, {{\"u\": 1}}]}}}}");
        let got = entries(&doc).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].len() > 3 * READ);
    }
}
