//! Path normalization: the one spelling of a path that is both decided on and forwarded.
//!
//! Written by hand because no maintained crate does this exact job: the `percent-encoding`
//! crate decodes everything (including `%2F`, which must be refused, not decoded), and URL
//! libraries resolve dot segments but keep empty segments and trailing slashes.
//!
//! Rules, applied once per request:
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, other escapes
//!   are kept with upper-case hex;
//! - an encoded `/`, `\` or `;` (`%2F`, `%5C`, `%3B`), an encoded control character (including
//!   NUL), escaped bytes that do not form valid UTF-8 once decoded (overlong encodings such as
//!   `%C0%AE` or `%E0%80%AE`, surrogates, stray continuation bytes), an invalid escape, a raw
//!   `\`, a raw control character, a raw non-ASCII byte or a `;` is refused;
//! - empty segments (`//`) and `.` segments are dropped, `..` removes the previous segment and
//!   never climbs above the root;
//! - a trailing slash is dropped (`/admin/` is `/admin`); the root stays `/`.

use std::borrow::Cow;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (e.g. `*` or an authority-form target).
    #[error("request target must be an absolute path starting with `/`")]
    NotAbsolute,
    /// `%2F` or `%5C` in the path.
    #[error("encoded `/` or `\\` (`%{0}`) is not allowed in the path")]
    EncodedSeparator(String),
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-escape in the path")]
    InvalidEscape,
    /// An encoded control character or NUL.
    #[error("encoded control character (`%{0}`) is not allowed in the path")]
    EncodedControl(String),
    /// Escaped bytes that do not decode to valid UTF-8 (overlong encodings and the like).
    #[error("percent-escapes in the path do not decode to valid UTF-8 (overlong or invalid encoding)")]
    InvalidUtf8,
    /// A raw byte outside ASCII.
    #[error("raw non-ASCII byte in the path (percent-encode it)")]
    NonAscii,
    /// A raw backslash.
    #[error("backslash is not allowed in the path")]
    Backslash,
    /// A raw control character or NUL.
    #[error("control character is not allowed in the path")]
    Control,
    /// A `;` path parameter (raw or `%3B`), which some backends strip and others keep.
    #[error("`;` path parameters are not allowed")]
    Semicolon,
}

/// Normalizes `path`; borrows when the path is already normal.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if is_already_normal(bytes) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(bytes)?;
    Ok(Cow::Owned(resolve_segments(&decoded)))
}

/// True when the path has nothing to decode, resolve or refuse: the common case, checked
/// in one pass without allocating.
fn is_already_normal(bytes: &[u8]) -> bool {
    let mut previous = b'/';
    let mut segment_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'%' | b'\\' | b';' => return false,
            b if !(0x20..0x7f).contains(&b) => return false,
            b'/' if i > 0 => {
                if previous == b'/' || is_dot_segment(&bytes[segment_start + 1..i]) {
                    return false;
                }
                segment_start = i;
            }
            _ => {}
        }
        previous = b;
    }
    let last = &bytes[segment_start + 1..];
    let trailing_slash = bytes.len() > 1 && previous == b'/';
    !trailing_slash && !is_dot_segment(last)
}

fn is_dot_segment(segment: &[u8]) -> bool {
    segment == b"." || segment == b".."
}

fn decode_unreserved(bytes: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(bytes.len());
    // Each segment, fully decoded (escapes and raw bytes alike), must be valid UTF-8 on its
    // own: this refuses overlong encodings (`%C0%AE`, `%E0%80%AE`, …) that some decoders turn
    // into `.` or `/`, and characters split across segments or around raw bytes, which `..`
    // resolution could otherwise re-join into something the decision never saw.
    let mut segment: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (hi, lo) = match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&hi), Some(&lo)) => (hex(hi), hex(lo)),
                    _ => return Err(PathError::InvalidEscape),
                };
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::InvalidEscape);
                };
                let value = hi << 4 | lo;
                let upper = format!("{value:02X}");
                match value {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator(upper)),
                    b';' => return Err(PathError::Semicolon),
                    0x00..=0x1f | 0x7f => return Err(PathError::EncodedControl(upper)),
                    v if is_unreserved(v) => out.push(v as char),
                    _ => {
                        out.push('%');
                        out.push_str(&upper);
                    }
                }
                segment.push(value);
                i += 3;
                continue;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Semicolon),
            b if b < 0x20 || b == 0x7f => return Err(PathError::Control),
            // hyper passes raw bytes above 0x7F through; they are not a valid request target.
            b if b > 0x7f => return Err(PathError::NonAscii),
            b'/' => {
                check_utf8(&segment)?;
                segment.clear();
                out.push('/');
            }
            b => {
                segment.push(b);
                out.push(b as char);
            }
        }
        i += 1;
    }
    check_utf8(&segment)?;
    Ok(out)
}

fn check_utf8(segment: &[u8]) -> Result<(), PathError> {
    std::str::from_utf8(segment).map(|_| ()).map_err(|_| PathError::InvalidUtf8)
}

fn resolve_segments(decoded: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Fully percent-decodes one path parameter value (used for resource refs); `None` if the
/// result is not UTF-8. Escapes were validated by [`normalize`].
pub fn decode_param(value: &str) -> Option<Cow<'_, str>> {
    if !value.contains('%') {
        return Some(Cow::Borrowed(value));
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests;
