//! Tokens: making them, hashing them, comparing hashes in constant time, and reading the one a
//! request presents.
//!
//! A token is `sb_` followed by 32 bytes from the operating system's random source in unpadded
//! base64url (46 characters). The server keeps only its SHA-256 hash: a stolen registry or
//! admin hash file does not hand out tokens, and 256 random bits need no slow password hash.

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in a token.
pub const TOKEN_RANDOM_BYTES: usize = 32;
/// What every token the server makes starts with, so a token found in a file or a log is
/// recognisable as one (and can be searched for).
pub const TOKEN_PREFIX: &str = "sb_";
/// Longest token a request may present; longer ones are refused before hashing.
pub const TOKEN_BYTES_MAX: usize = 512;
/// Shortest admin token an operator may choose with `--admin-token`.
pub const ADMIN_TOKEN_BYTES_MIN: usize = 16;

/// The SHA-256 hash of a token. Its `Debug` does not print the bytes, so a hash never ends up
/// in a log by accident either.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TokenHash(..)")
    }
}

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &str) -> Self {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Constant-time equality: how long it takes says nothing about where two hashes differ.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// 64 lowercase hex digits, as stored.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Reads 64 hex digits; `None` when `text` is anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
        }
        Some(TokenHash(bytes))
    }
}

/// A new token from the OS random source. Failing to read that source is not something the
/// server can work around, so it is a panic (caught as a 500 by the router).
pub fn generate() -> String {
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random source is readable");
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What a request presented.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// No `Authorization` header (and no `?token=` where one is accepted).
    Nothing,
    /// A token, hashed.
    Token(TokenHash),
    /// Something that is not a usable token; the text says what is wrong.
    Malformed(&'static str),
}

/// The token in `Authorization: Bearer TOKEN`, else in `query_token` (the `?token=` value of
/// the routes that accept one, for browsers, which cannot set headers on WebSockets and
/// EventSource).
pub fn presented(headers: &HeaderMap, query_token: Option<&str>) -> Presented {
    match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let Ok(text) = value.to_str() else {
                return Presented::Malformed("the Authorization header is not plain text");
            };
            let Some((scheme, token)) = text.trim().split_once(' ') else {
                return Presented::Malformed(
                    "the Authorization header must be `Bearer TOKEN` (a scheme, a space, a token)",
                );
            };
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Presented::Malformed("the Authorization header's scheme must be `Bearer`");
            }
            checked(token.trim())
        }
        None => match query_token {
            Some(token) => checked(token.trim()),
            None => Presented::Nothing,
        },
    }
}

fn checked(token: &str) -> Presented {
    if token.is_empty() {
        Presented::Malformed("the token is empty")
    } else if token.len() > TOKEN_BYTES_MAX {
        Presented::Malformed("the token is longer than any token this server issues")
    } else {
        Presented::Token(TokenHash::of(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn generated_tokens_are_long_random_and_prefixed() {
        let first = generate();
        let second = generate();
        assert!(first.starts_with(TOKEN_PREFIX));
        // 32 bytes in unpadded base64 are 43 characters.
        assert_eq!(first.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(first, second);
    }

    #[test]
    fn hashes_round_trip_through_hex_and_compare_equal() {
        let hash = TokenHash::of("sb_example");
        let read = TokenHash::from_hex(&hash.to_hex()).unwrap();
        assert!(read.matches(&hash));
        assert!(!read.matches(&TokenHash::of("sb_other")));
        assert_eq!(TokenHash::from_hex("not hex"), None);
        assert_eq!(format!("{hash:?}"), "TokenHash(..)");
    }

    #[test]
    fn bearer_header_wins_over_the_query_token() {
        let headers = bearer("Bearer sb_header");
        assert_eq!(
            presented(&headers, Some("sb_query")),
            Presented::Token(TokenHash::of("sb_header"))
        );
        assert_eq!(
            presented(&HeaderMap::new(), Some("sb_query")),
            Presented::Token(TokenHash::of("sb_query"))
        );
        assert_eq!(presented(&HeaderMap::new(), None), Presented::Nothing);
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_malformed() {
        assert!(matches!(
            presented(&bearer("Basic dXNlcjpwdw=="), None),
            Presented::Malformed(_)
        ));
        assert!(matches!(
            presented(&bearer("Bearer"), None),
            Presented::Malformed(_)
        ));
        assert!(matches!(
            presented(&HeaderMap::new(), Some("")),
            Presented::Malformed(_)
        ));
    }
}
