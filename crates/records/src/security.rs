//! Kafka's security vocabulary, defined once for the broker, the server,
//! the client and the CLI: the ACL resource types, pattern types,
//! operations and permissions (Kafka's `ResourceType`, `PatternType`,
//! `AclOperation`, `AclPermissionType`) and a listener's
//! [`SecurityProtocol`].
//!
//! Each value has Kafka's wire code ([`Operation::code`]) and Kafka's name
//! ([`Operation::name`]: `TRANSACTIONAL_ID`, `PREFIXED`, `IDEMPOTENT_WRITE`,
//! what the Java enums' `toString`, `kafka-acls.sh` and AdminClient print).
//! The ACL names parse in any case with `-` and `_` ignored, so
//! `transactional-id`, `TransactionalId` and `TRANSACTIONAL_ID` are one
//! value; a security protocol parses as Kafka's `SecurityProtocol.forName`
//! (its `listener.security.protocol.map` values and the clients'
//! `security.protocol`) does: in any case, spelled with its underscore
//! (`sasl_ssl`, not `sasl-ssl`). A code Kafka does not know (0 is its
//! UNKNOWN) has no value: `from_code` answers `None`.

use std::fmt;
use std::str::FromStr;

/// Defines one vocabulary enum: its variants with Kafka's codes and names;
/// `$spelled` says whether a string names a value's Kafka name.
macro_rules! kafka_vocabulary {
    ($(#[$doc:meta])* $Name:ident, $what:literal, $spelled:path {
        $($(#[$vdoc:meta])* $Variant:ident = $code:literal, $text:literal;)*
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $Name {
            $($(#[$vdoc])* $Variant = $code,)*
        }

        impl $Name {
            /// Every value, in code order.
            pub const ALL: &'static [$Name] = &[$($Name::$Variant,)*];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                self as i8
            }

            /// The value of a wire code (`None`: one Kafka calls UNKNOWN or
            /// a newer one).
            pub fn from_code(code: i8) -> Option<$Name> {
                match code {
                    $($code => Some($Name::$Variant),)*
                    _ => None,
                }
            }

            /// Kafka's name, as its Java enum prints it.
            pub fn name(self) -> &'static str {
                match self {
                    $($Name::$Variant => $text,)*
                }
            }

            /// The name in CamelCase (`TransactionalId`), as older pubsub
            /// files and outputs spell it.
            pub fn camel_name(self) -> &'static str {
                match self {
                    $($Name::$Variant => stringify!($Variant),)*
                }
            }

            /// The value `name` spells (see `$spelled`).
            pub fn from_name(name: &str) -> Option<$Name> {
                $Name::ALL.iter().copied().find(|v| $spelled(name, v.name()))
            }
        }

        impl fmt::Display for $Name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $Name {
            type Err = String;

            /// [`Self::from_name`], or a message listing the names.
            fn from_str(s: &str) -> Result<Self, String> {
                $Name::from_name(s).ok_or_else(|| {
                    let names: Vec<&str> = $Name::ALL.iter().map(|v| v.name()).collect();
                    format!("{s:?}: {} is one of {}", $what, names.join(", "))
                })
            }
        }
    };
}

/// Whether `name` spells Kafka's `kafka`, in any case with `-` and `_`
/// ignored (the ACL vocabularies).
fn loosely(name: &str, kafka: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '-' && *c != '_')
            .map(|c| c.to_ascii_uppercase())
            .collect()
    };
    squash(name) == squash(kafka)
}

/// Whether `name` spells Kafka's `kafka` in any case, as Kafka's
/// `SecurityProtocol.forName` (upper-cased, then the enum's exact name).
fn in_any_case(name: &str, kafka: &str) -> bool {
    name.eq_ignore_ascii_case(kafka)
}

kafka_vocabulary! {
    /// What kind of thing an ACL protects (Kafka's `ResourceType`).
    ResourceType, "a resource type", loosely {
        /// Filters only: every type.
        Any = 1, "ANY";
        /// A topic.
        Topic = 2, "TOPIC";
        /// A consumer group.
        Group = 3, "GROUP";
        /// The cluster (one resource, named `kafka-cluster`).
        Cluster = 4, "CLUSTER";
        /// A transactional producer id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user.
        User = 7, "USER";
    }
}

kafka_vocabulary! {
    /// How an ACL's resource name matches names (Kafka's `PatternType`).
    PatternType, "a resource pattern type", loosely {
        /// Filters only: every pattern type, names compared exactly.
        Any = 1, "ANY";
        /// Filters only: every binding that would apply to the name.
        Match = 2, "MATCH";
        /// The name itself, or every name when it is `*`.
        Literal = 3, "LITERAL";
        /// Every name that starts with it.
        Prefixed = 4, "PREFIXED";
    }
}

kafka_vocabulary! {
    /// What a principal does to a resource (Kafka's `AclOperation`).
    Operation, "an operation", loosely {
        /// Filters only: every operation.
        Any = 1, "ANY";
        /// Every operation.
        All = 2, "ALL";
        /// Consume, join a group.
        Read = 3, "READ";
        /// Produce.
        Write = 4, "WRITE";
        /// Create topics.
        Create = 5, "CREATE";
        /// Delete topics, records, groups.
        Delete = 6, "DELETE";
        /// Add partitions, change ACLs.
        Alter = 7, "ALTER";
        /// See that a resource exists.
        Describe = 8, "DESCRIBE";
        /// Inter-broker requests.
        ClusterAction = 9, "CLUSTER_ACTION";
        /// Read settings.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// Change settings.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Produce idempotently.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        /// Keep a transaction prepared across producer restarts (KIP-939).
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
}

kafka_vocabulary! {
    /// Whether an ACL allows or denies (Kafka's `AclPermissionType`).
    Permission, "a permission", loosely {
        /// Filters only: both.
        Any = 1, "ANY";
        /// Denies (and wins over any allow).
        Deny = 2, "DENY";
        /// Allows.
        Allow = 3, "ALLOW";
    }
}

kafka_vocabulary! {
    /// A listener's `security.protocol` (Kafka's `SecurityProtocol`, whose
    /// ids are the codes).
    SecurityProtocol, "the security protocol", in_any_case {
        /// Neither TLS nor SASL: every client is `User:ANONYMOUS`.
        Plaintext = 0, "PLAINTEXT";
        /// TLS; the principal comes from the client certificate, if asked for.
        Ssl = 1, "SSL";
        /// SASL authentication over plain TCP.
        SaslPlaintext = 2, "SASL_PLAINTEXT";
        /// SASL authentication over TLS.
        SaslSsl = 3, "SASL_SSL";
    }
}

// The vocabulary macro derives no Default (the ACL enums have none).
#[allow(clippy::derivable_impls)]
impl Default for SecurityProtocol {
    fn default() -> Self {
        SecurityProtocol::Plaintext
    }
}

impl SecurityProtocol {
    /// Whether clients authenticate with SASL (before that, nothing but
    /// ApiVersions and the SASL exchange is answered).
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Whether connections are TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

impl Operation {
    /// Whether an ALLOW binding for `self` also allows `wanted` (Kafka's
    /// implications: Describe by Read, Write, Delete and Alter;
    /// DescribeConfigs by AlterConfigs; everything by All).
    pub fn allow_implies(self, wanted: Operation) -> bool {
        self == wanted
            || self == Operation::All
            || match wanted {
                Operation::Describe => matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ),
                Operation::DescribeConfigs => self == Operation::AlterConfigs,
                _ => false,
            }
    }

    /// Whether a DENY binding for `self` denies `wanted` (no implications
    /// but All).
    pub fn deny_covers(self, wanted: Operation) -> bool {
        self == wanted || self == Operation::All
    }
}

impl ResourceType {
    /// The operations that apply to resources of this type, as the
    /// `authorized_operations` bitfields of Metadata, DescribeCluster and
    /// DescribeGroups list them (Kafka 4.1's `AclEntry.supportedOperations`).
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_kafkas() {
        // As Kafka 4.1.1's enums print them (`values()` with `code()`).
        let ops: Vec<(i8, &str)> = Operation::ALL
            .iter()
            .map(|o| (o.code(), o.name()))
            .collect();
        assert_eq!(
            ops,
            [
                (1, "ANY"),
                (2, "ALL"),
                (3, "READ"),
                (4, "WRITE"),
                (5, "CREATE"),
                (6, "DELETE"),
                (7, "ALTER"),
                (8, "DESCRIBE"),
                (9, "CLUSTER_ACTION"),
                (10, "DESCRIBE_CONFIGS"),
                (11, "ALTER_CONFIGS"),
                (12, "IDEMPOTENT_WRITE"),
                (13, "CREATE_TOKENS"),
                (14, "DESCRIBE_TOKENS"),
                (15, "TWO_PHASE_COMMIT"),
            ]
        );
        let types: Vec<(i8, &str)> = ResourceType::ALL
            .iter()
            .map(|t| (t.code(), t.name()))
            .collect();
        assert_eq!(
            types,
            [
                (1, "ANY"),
                (2, "TOPIC"),
                (3, "GROUP"),
                (4, "CLUSTER"),
                (5, "TRANSACTIONAL_ID"),
                (6, "DELEGATION_TOKEN"),
                (7, "USER"),
            ]
        );
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(PatternType::Match.name(), "MATCH");
        assert_eq!(Permission::Allow.code(), 3);
        assert_eq!(Permission::Deny.name(), "DENY");
        assert_eq!(SecurityProtocol::SaslSsl.code(), 3);
        assert_eq!(SecurityProtocol::SaslSsl.to_string(), "SASL_SSL");
        assert_eq!(ResourceType::from_code(0), None);
        assert_eq!(Operation::from_code(16), None);
        for op in Operation::ALL {
            assert_eq!(Operation::from_code(op.code()), Some(*op));
            assert_eq!(Operation::from_name(op.name()), Some(*op));
            assert_eq!(Operation::from_name(op.camel_name()), Some(*op));
        }
    }

    #[test]
    fn names_parse_in_every_spelling() {
        for spelling in ["transactional-id", "TransactionalId", "TRANSACTIONAL_ID"] {
            assert_eq!(
                spelling.parse::<ResourceType>(),
                Ok(ResourceType::TransactionalId)
            );
        }
        assert_eq!(
            ResourceType::TransactionalId.camel_name(),
            "TransactionalId"
        );
        assert_eq!(
            "describe_configs".parse::<Operation>(),
            Ok(Operation::DescribeConfigs)
        );
        assert_eq!("prefixed".parse::<PatternType>(), Ok(PatternType::Prefixed));
        let err = "reed".parse::<Operation>().expect_err("no such operation");
        assert!(
            err.contains("READ") && err.contains("IDEMPOTENT_WRITE"),
            "{err}"
        );
        let err = "tls".parse::<SecurityProtocol>().expect_err("not one");
        assert!(err.contains("SASL_PLAINTEXT"), "{err}");
    }

    /// Kafka's `SecurityProtocol.forName` upper-cases the name and takes
    /// the enum's exact name: any case, but the underscore as it is.
    #[test]
    fn security_protocols_parse_as_kafkas_for_name() {
        for (spelling, protocol) in [
            ("SASL_SSL", SecurityProtocol::SaslSsl),
            ("sasl_ssl", SecurityProtocol::SaslSsl),
            ("Sasl_Plaintext", SecurityProtocol::SaslPlaintext),
            ("plaintext", SecurityProtocol::Plaintext),
            ("ssl", SecurityProtocol::Ssl),
        ] {
            assert_eq!(spelling.parse::<SecurityProtocol>(), Ok(protocol));
        }
        for wrong in ["sasl-ssl", "SASLSSL", "SaslSsl", "sasl_plain", "TLS", ""] {
            let err = wrong.parse::<SecurityProtocol>().expect_err(wrong);
            assert!(err.contains("SASL_SSL"), "{err}");
        }
    }

    #[test]
    fn implications_are_kafkas() {
        use Operation::*;
        for op in [Read, Write, Delete, Alter, Describe, All] {
            assert!(op.allow_implies(Describe), "{op}");
        }
        for op in [
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            TwoPhaseCommit,
        ] {
            assert!(!op.allow_implies(Describe), "{op}");
        }
        assert!(AlterConfigs.allow_implies(DescribeConfigs));
        assert!(!Alter.allow_implies(DescribeConfigs));
        assert!(!Write.allow_implies(IdempotentWrite));
        assert!(!Write.allow_implies(TwoPhaseCommit));
        assert!(All.allow_implies(TwoPhaseCommit));
        assert!(!Read.allow_implies(Write));
        assert!(!Read.deny_covers(Describe));
        assert!(All.deny_covers(Read));
    }

    #[test]
    fn protocols_say_what_they_wrap() {
        use SecurityProtocol::*;
        assert_eq!(SecurityProtocol::default(), Plaintext);
        assert!(!Plaintext.uses_tls() && !Plaintext.uses_sasl());
        assert!(Ssl.uses_tls() && !Ssl.uses_sasl());
        assert!(!SaslPlaintext.uses_tls() && SaslPlaintext.uses_sasl());
        assert!(SaslSsl.uses_tls() && SaslSsl.uses_sasl());
    }
}
