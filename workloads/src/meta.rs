//! Inode metadata a workload sets and a check reads back: permission bits, access and
//! modification times, and `user.` extended attributes, with the bounds every side holds
//! them to (spec validation, the agent, the read-back, the oracle).

use serde::{Deserialize, Serialize};

use crate::pattern::Pattern;

/// Permission bits a `chmod` may set (no set-id or sticky bits: a write by a process
/// without `CAP_FSETID` clears set-id bits, which would make the mode depend on the caller).
pub const MODE_BITS: u32 = 0o777;
/// Mode of a file made by `create` (the agent runs with umask 022).
pub const CREATE_MODE: u32 = 0o644;
/// Longest xattr name a workload may use, without the `user.` prefix.
pub const MAX_XATTR_NAME: usize = 32;
/// Largest xattr value a workload may set: fits one 4 KiB ext4 xattr block with its
/// header and entry, so ext4 and xfs both accept every value the generator makes.
pub const MAX_XATTR_VALUE: u64 = 2048;
/// At most this many `user.` xattrs are read back per file (more is reported as an error).
pub const MAX_XATTRS: usize = 32;
/// Largest `sec` of a `utimensat` (2^31 - 1: representable on every inode format).
pub const MAX_TIME_SEC: u64 = i32::MAX as u64;
/// The namespace prefix the agent puts before every xattr name of a workload.
pub const XATTR_PREFIX: &str = "user.";

/// A point in time as `stat` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds, below 1e9.
    pub nsec: u32,
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:09}", self.sec, self.nsec)
    }
}

/// One extended attribute, its name without the `user.` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    /// Name without the `user.` prefix.
    pub name: String,
    /// Value bytes (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
}

/// The metadata of one file as a check found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Access time.
    pub atime: Timestamp,
    /// Modification time.
    pub mtime: Timestamp,
    /// Its `user.` xattrs, by name.
    pub xattrs: Vec<Xattr>,
}

/// The value a `setxattr` of `len` bytes with pattern `id` of workload `seed` sets: the
/// pattern's bytes from offset 0 (the same bytes a `pwrite` of it at 0 would write).
pub fn xattr_value(seed: u64, id: u32, len: u64) -> Vec<u8> {
    let n = usize::try_from(len.min(MAX_XATTR_VALUE)).unwrap_or(0);
    Pattern::new(seed, id).bytes(0, n)
}

/// Why an xattr name is refused, if it is.
pub fn check_xattr_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_XATTR_NAME {
        return Err(format!(
            "xattr name `{}` must be 1 to {MAX_XATTR_NAME} bytes long",
            name.chars().take(MAX_XATTR_NAME + 8).collect::<String>()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(format!(
            "xattr name `{name}` may hold only ASCII letters, digits, `_`, `-` and `.` (the agent puts `{XATTR_PREFIX}` before it)"
        ));
    }
    Ok(())
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() as u64 > 2 * super::MAX_XATTR_VALUE {
            return Err(serde::de::Error::custom(format_args!(
                "xattr value of {} hex digits: at most {}",
                s.len(),
                2 * super::MAX_XATTR_VALUE
            )));
        }
        hex::decode(&s).map_err(|e| serde::de::Error::custom(format_args!("xattr value: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattr_values_round_trip_through_json_as_hex() {
        let x = Xattr {
            name: "a".into(),
            value: vec![0, 0xab, 0x10],
        };
        let json = serde_json::to_string(&x).expect("json");
        assert_eq!(json, r#"{"name":"a","value":"00ab10"}"#);
        assert_eq!(serde_json::from_str::<Xattr>(&json).expect("back"), x);
        assert!(serde_json::from_str::<Xattr>(r#"{"name":"a","value":"0g"}"#).is_err());
        assert!(serde_json::from_str::<Xattr>(r#"{"name":"a","value":"abc"}"#).is_err());
        let huge = format!(r#"{{"name":"a","value":"{}"}}"#, "00".repeat(5000));
        assert!(serde_json::from_str::<Xattr>(&huge).is_err());
    }

    #[test]
    fn xattr_names_are_bounded_and_plain() {
        assert!(check_xattr_name("p0.x-y_z").is_ok());
        assert!(check_xattr_name("").is_err());
        assert!(check_xattr_name(&"a".repeat(33)).is_err());
        assert!(check_xattr_name("a/b").is_err());
        assert!(check_xattr_name("trusted:x").is_err());
    }

    #[test]
    fn an_xattr_value_is_the_patterns_first_bytes() {
        assert_eq!(xattr_value(7, 3, 5), Pattern::new(7, 3).bytes(0, 5));
        assert_eq!(xattr_value(7, 3, 1 << 40).len() as u64, MAX_XATTR_VALUE);
    }
}
