//! Credentials are kept in a type that never prints them.

use std::fmt;

/// A header value or other credential. Debug and Display show only its first
/// four characters and its length — unless it was made `public` (a dataset
/// name, a content type), which shows in full.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Credential,
    /// Not known to be a credential, but not known to be safe to show.
    Opaque,
    Public,
}

impl Secret {
    /// A credential: masked, and never sent over plain http to another machine.
    pub fn new(value: String) -> Self {
        Self { value, kind: Kind::Credential }
    }

    /// A value the user gave that may be sensitive: masked, but not a credential.
    pub fn opaque(value: String) -> Self {
        Self { value, kind: Kind::Opaque }
    }

    /// A value that is not a credential but travels with them.
    pub fn public(value: String) -> Self {
        Self { value, kind: Kind::Public }
    }

    pub fn is_credential(&self) -> bool {
        self.kind == Kind::Credential
    }

    /// The real value, for the wire only.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn masked(&self) -> String {
        if self.kind == Kind::Public {
            return self.value.clone();
        }
        let head: String = self.value.chars().take(4).collect();
        format!("{head}… ({} chars)", self.value.chars().count())
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
        assert_eq!(format!("{:?}", Secret::public("my-dataset".into())), "my-dataset");
    }
}
