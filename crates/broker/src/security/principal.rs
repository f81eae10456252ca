//! A Kafka principal: a type and a name, written `User:alice`.
//!
//! Kafka's default principal builder gives `User:ANONYMOUS` to a client that
//! did not authenticate (a PLAINTEXT or SSL listener without client
//! certificates), `User:<SASL name>` after SASL, and `User:<certificate
//! subject>` after mutual TLS. ACLs name principals in this same text form.

use std::fmt;

/// The principal type every built-in authentication gives.
pub const USER_TYPE: &str = "User";

/// An authenticated (or anonymous) client identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    /// `User` for every built-in authentication.
    pub principal_type: String,
    /// The user name, certificate subject or `ANONYMOUS`.
    pub name: String,
}

impl Principal {
    /// `User:name`.
    pub fn user(name: impl Into<String>) -> Principal {
        Principal {
            principal_type: USER_TYPE.to_string(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`, the principal of an unauthenticated client.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }

    /// Whether this is `User:ANONYMOUS`.
    pub fn is_anonymous(&self) -> bool {
        self.principal_type == USER_TYPE && self.name == "ANONYMOUS"
    }

    /// Parses `Type:name` (the name may itself hold colons, as a
    /// certificate subject can); `None` without a colon or with an empty
    /// type.
    pub fn parse(text: &str) -> Option<Principal> {
        let (principal_type, name) = text.split_once(':')?;
        if principal_type.is_empty() {
            return None;
        }
        Some(Principal {
            principal_type: principal_type.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let p = Principal::parse("User:CN=client,O=pubsub").expect("parses");
        assert_eq!(p, Principal::user("CN=client,O=pubsub"));
        assert_eq!(p.to_string(), "User:CN=client,O=pubsub");
        assert!(Principal::anonymous().is_anonymous());
        assert!(!Principal::user("alice").is_anonymous());
        assert_eq!(Principal::parse("alice"), None);
        assert_eq!(Principal::parse(":alice"), None);
    }
}
