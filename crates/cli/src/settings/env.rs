//! `PUBSUB_*` environment variables: one per key, named from the key's
//! path in the defaults' own shape, typed like the default's value, and
//! written into the TOML table the file layer left.

use std::collections::BTreeMap;

use super::Settings;

/// Environment variables of our own tools that are not settings: the
/// test tools' and the client subcommands' (crates/cli/src/remote.rs and
/// security.rs), which `serve` leaves alone rather than warn about.
pub(super) const IGNORED_ENV: &[&str] = &[
    "PUBSUB_BIN",
    "PUBSUB_WRITE_FIXTURES",
    "PUBSUB_TEST_HALT_AFTER_MARKERS",
    "PUBSUB_BOOTSTRAP",
    "PUBSUB_SECURITY_PROTOCOL",
    "PUBSUB_SASL_MECHANISM",
    "PUBSUB_USER",
    "PUBSUB_PASSWORD",
    "PUBSUB_PASSWORD_FILE",
    "PUBSUB_CLIENT_TLS_CA",
    "PUBSUB_CLIENT_TLS_CERT",
    "PUBSUB_CLIENT_TLS_KEY",
    "PUBSUB_COMMAND_CONFIG",
];

/// The kind of a setting's value, to type environment variables.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Integer,
    Boolean,
    Text,
    /// An array: a TOML inline array (`[{ name = "ssl", ... }]`, as
    /// `listeners` needs), or else a comma-separated list of texts
    /// (`User:admin,User:ops`).
    Array,
}

/// `PUBSUB_*` name -> (key path, kind), from the defaults' own shape.
pub(super) fn env_keys() -> BTreeMap<String, (Vec<String>, Kind)> {
    let mut out = BTreeMap::new();
    let Ok(toml::Value::Table(root)) = toml::Value::try_from(Settings::default()) else {
        return out;
    };
    fn walk(
        prefix: &[String],
        table: &toml::Table,
        out: &mut BTreeMap<String, (Vec<String>, Kind)>,
    ) {
        for (k, v) in table {
            let mut path = prefix.to_vec();
            path.push(k.clone());
            let kind = match v {
                toml::Value::Table(t) => {
                    walk(&path, t, out);
                    continue;
                }
                toml::Value::Integer(_) => Kind::Integer,
                toml::Value::Boolean(_) => Kind::Boolean,
                toml::Value::Array(_) => Kind::Array,
                _ => Kind::Text,
            };
            out.insert(
                format!("PUBSUB_{}", path.join("_").to_ascii_uppercase()),
                (path, kind),
            );
        }
    }
    walk(&[], &root, &mut out);
    out
}

pub(super) fn typed(kind: &Kind, value: &str) -> Result<toml::Value, String> {
    match kind {
        Kind::Integer => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("{value:?} is not a whole number")),
        Kind::Boolean => match value.trim() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("{value:?} is not true or false")),
        },
        Kind::Text => Ok(toml::Value::String(value.to_string())),
        Kind::Array if value.trim_start().starts_with('[') => format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(toml::Value::is_array)
            .ok_or_else(|| {
                format!(
                    "{value:?} is not a TOML array, e.g. [{{ name = \"ssl\", listen = \"127.0.0.1:9093\", protocol = \"SSL\" }}]"
                )
            }),
        Kind::Array => Ok(toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| toml::Value::String(v.to_string()))
                .collect(),
        )),
    }
}

pub(super) fn set(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else {
            return;
        };
        t = inner;
    }
    t.insert(last.clone(), value);
}
