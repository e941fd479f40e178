//! The op fields whose type depends on the op kind (`flags`, `sync`, `mode`): read as
//! written, then checked and converted once the kind is known.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::op::{FallocMode, OpenSync, RenameFlag, RwfFlag};

/// The `flags` field: a `pwritev2` flag or a `renameat2` flag; which one an op takes is
/// checked once its kind is known.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum AnyFlag {
    Dsync,
    Sync,
    Exchange,
    Noreplace,
    Whiteout,
}

impl AnyFlag {
    fn name(self) -> &'static str {
        match self {
            AnyFlag::Dsync => "dsync",
            AnyFlag::Sync => "sync",
            AnyFlag::Exchange => "exchange",
            AnyFlag::Noreplace => "noreplace",
            AnyFlag::Whiteout => "whiteout",
        }
    }

    /// The `flags` of a `pwritev2` or `uring_write` (op `kind`).
    pub(super) fn rwf<E: de::Error>(self, kind: &str) -> Result<RwfFlag, E> {
        match self {
            AnyFlag::Dsync => Ok(RwfFlag::Dsync),
            AnyFlag::Sync => Ok(RwfFlag::Sync),
            other => Err(E::custom(format_args!(
                "field `flags` of op `{kind}` must be dsync (RWF_DSYNC) or sync (RWF_SYNC), not `{}`",
                other.name()
            ))),
        }
    }

    /// The `flags` of a `renameat2`.
    pub(super) fn rename<E: de::Error>(self) -> Result<RenameFlag, E> {
        RenameFlag::from_name(self.name()).ok_or_else(|| {
            E::custom(format_args!(
                "field `flags` of op `renameat2` must be exchange, noreplace or whiteout, not `{}`",
                self.name()
            ))
        })
    }
}

/// The `sync` field: a bool for `mmap` (MAP_SYNC), a name for `create`/`open` (the open
/// flag); which one an op takes is checked once its kind is known.
#[derive(Debug, Clone)]
pub(super) enum SyncField {
    Bool(bool),
    Name(String),
}

impl<'de> Deserialize<'de> for SyncField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SyncField, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SyncField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true or false (mmap), or none, dsync or sync (create, open)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SyncField, E> {
                Ok(SyncField::Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SyncField, E> {
                // Bounded: only the three names are accepted, so a long string is an error.
                Ok(SyncField::Name(v.chars().take(32).collect()))
            }
        }
        d.deserialize_any(V)
    }
}

impl SyncField {
    /// MAP_SYNC of an `mmap`.
    pub(super) fn map_sync<E: de::Error>(v: Option<SyncField>) -> Result<bool, E> {
        match v {
            None => Ok(false),
            Some(SyncField::Bool(b)) => Ok(b),
            Some(SyncField::Name(n)) => Err(E::custom(format_args!(
                "field `sync` of op `mmap` must be true or false, not `{n}`"
            ))),
        }
    }

    /// The open flag of a `create`/`open`.
    pub(super) fn open_sync<E: de::Error>(v: Option<SyncField>, kind: &str) -> Result<OpenSync, E> {
        let bad = |what: &dyn fmt::Display| {
            E::custom(format_args!(
                "field `sync` of op `{kind}` must be none, dsync (O_DSYNC) or sync (O_SYNC), not `{what}`"
            ))
        };
        match v {
            None => Ok(OpenSync::None),
            Some(SyncField::Bool(b)) => Err(bad(&b)),
            Some(SyncField::Name(n)) => [OpenSync::None, OpenSync::Dsync, OpenSync::Sync]
                .into_iter()
                .find(|s| s.name() == n)
                .ok_or_else(|| bad(&n)),
        }
    }
}

/// The `mode` field: a name for `fallocate` (`punch_hole`, …), permission bits for `chmod`
/// (a YAML integer such as `0o640`, or a string of octal digits such as `"0640"`).
#[derive(Debug, Clone)]
pub(super) enum ModeField {
    Name(String),
    Bits(u64),
}

impl<'de> Deserialize<'de> for ModeField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ModeField, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ModeField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a fallocate mode name, or permission bits (0o640 or \"0640\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ModeField, E> {
                Ok(ModeField::Bits(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ModeField, E> {
                u64::try_from(v)
                    .map(ModeField::Bits)
                    .map_err(|_| E::custom(format_args!("mode {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ModeField, E> {
                // Bounded: a mode name or a few octal digits; anything longer is an error.
                Ok(ModeField::Name(v.chars().take(32).collect()))
            }
        }
        d.deserialize_any(V)
    }
}

impl ModeField {
    /// The mode of a `fallocate`.
    pub(super) fn falloc<E: de::Error>(v: ModeField) -> Result<FallocMode, E> {
        const MODES: [FallocMode; 6] = [
            FallocMode::Allocate,
            FallocMode::KeepSize,
            FallocMode::PunchHole,
            FallocMode::ZeroRange,
            FallocMode::CollapseRange,
            FallocMode::InsertRange,
        ];
        let bad = |what: &dyn fmt::Display| {
            let names: Vec<&str> = MODES.iter().map(|m| m.name()).collect();
            E::custom(format_args!(
                "field `mode` of op `fallocate` must be one of {}, not `{what}`",
                names.join(", ")
            ))
        };
        match v {
            ModeField::Bits(b) => Err(bad(&b)),
            ModeField::Name(n) => MODES
                .into_iter()
                .find(|m| m.name() == n)
                .ok_or_else(|| bad(&n)),
        }
    }

    /// The permission bits of a `chmod`.
    pub(super) fn perm<E: de::Error>(v: ModeField) -> Result<u32, E> {
        let bits = match &v {
            ModeField::Bits(b) => Some(*b),
            ModeField::Name(n)
                if !n.is_empty() && n.bytes().all(|c| (b'0'..=b'7').contains(&c)) =>
            {
                u64::from_str_radix(n, 8).ok()
            }
            ModeField::Name(_) => None,
        };
        match bits {
            Some(b) if b <= u64::from(crate::meta::MODE_BITS) => Ok(b as u32),
            _ => Err(E::custom(format_args!(
                "field `mode` of op `chmod` must be permission bits from 0 to 0o777 (e.g. 0o640 or \"0640\"), not `{}`",
                match v {
                    ModeField::Bits(b) => format!("{b:#o}"),
                    ModeField::Name(n) => n,
                }
            ))),
        }
    }
}
