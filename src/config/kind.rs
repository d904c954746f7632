//! How a setting's value is read: its [`Kind`] (from the field's type),
//! the text of an environment variable or flag turned into the TOML value
//! the file would hold, and the serde forms of durations and addresses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// How a setting's text (from the environment or a flag) is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// Comma-separated in the environment and on the command line.
    List,
    /// A socket address, host:port; checked where it is read, so a bad one
    /// is reported with the variable or flag that gave it.
    Addr,
}

/// The [`Kind`] of a field's type, so a setting's declaration names its
/// type only once.
pub(super) trait HasKind {
    const KIND: Kind;
}

macro_rules! has_kind {
    ($kind:ident: $($ty:ty),*) => {
        $(impl HasKind for $ty {
            const KIND: Kind = Kind::$kind;
        })*
    };
}

has_kind!(Str: String, PathBuf);
has_kind!(Addr: SocketAddr);
has_kind!(Int: u32, u64, usize, Duration);
has_kind!(Bool: bool);
has_kind!(List: Vec<String>);

impl<T: HasKind> HasKind for Option<T> {
    const KIND: Kind = T::KIND;
}

/// A `///` line as the help shows it: without the space after the slashes.
pub(super) const fn doc_line(doc: &'static str) -> &'static str {
    match doc.as_bytes() {
        [b' ', rest @ ..] => match std::str::from_utf8(rest) {
            Ok(line) => line,
            Err(_) => doc,
        },
        _ => doc,
    }
}

/// A duration as the file, environment and flags give it: whole seconds
/// (the key says so: `*_seconds`).
pub(super) mod whole_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// `listen` as the file gives it, refused with the form it takes.
pub(super) fn listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    address(&String::deserialize(d)?, "127.0.0.1:8001").map_err(|e| D::Error::custom(format!("listen: {e}")))
}

pub(super) fn metrics_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| {
            address(&text, "127.0.0.1:9000").map_err(|e| D::Error::custom(format!("metrics_listen: {e}")))
        })
        .transpose()
}

fn address(text: &str, example: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("'{text}' is not an address like {example}"))
}

pub(super) fn typed(kind: Kind, text: &str) -> Result<toml::Value, String> {
    Ok(match kind {
        Kind::Str => toml::Value::String(text.to_string()),
        Kind::Int => toml::Value::Integer(
            text.trim()
                .parse()
                .map_err(|_| format!("'{text}' is not a whole number"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("'{text}' is not true or false")),
        }),
        Kind::Addr => {
            address(text, "127.0.0.1:8001")?;
            toml::Value::String(text.to_string())
        }
        Kind::List => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
    })
}
