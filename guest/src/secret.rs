//! Credentials are kept in a type that never prints them.

use std::fmt;

/// A header value or other credential. Debug and Display show only its first
/// four characters and its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The real value, for the wire only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        let head: String = self.0.chars().take(4).collect();
        format!("{head}… ({} chars)", self.0.chars().count())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("hcaik_0123456789abcdef".into());
        assert_eq!(format!("{s:?}"), "hcai… (22 chars)");
        assert_eq!(s.to_string(), "hcai… (22 chars)");
        assert_eq!(s.expose(), "hcaik_0123456789abcdef");
    }
}
