//! Answers `ReadFiles`: reads named files back whole and reports them hex-encoded, one
//! [`FileReport`] per requested name, in request order.

use std::fs;
use std::io;
use std::path::Path;

use workloads::protocol::FileReport;

/// Report on each of `names` in `dir`.
pub fn read_files(dir: &Path, names: &[String]) -> Vec<FileReport> {
    names.iter().map(|name| read_one(dir, name)).collect()
}

/// A missing file (ENOENT) is `exists: false`; any other failure keeps `exists: true`
/// (something is there) and carries the error text.
fn read_one(dir: &Path, name: &str) -> FileReport {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(data) => FileReport {
            name: name.to_owned(),
            exists: true,
            size: data.len() as u64,
            data_hex: hex(&data),
            error: None,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => FileReport {
            name: name.to_owned(),
            exists: false,
            size: 0,
            data_hex: String::new(),
            error: None,
        },
        Err(e) => FileReport {
            name: name.to_owned(),
            exists: true,
            size: fs::metadata(&path).map_or(0, |m| m.len()),
            data_hex: String::new(),
            error: Some(format!("reading {}: {e}", path.display())),
        },
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0xa5, 0x0f, 0xff]), "00a50fff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn a_directory_is_reported_as_existing_with_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");

        let reports = read_files(dir.path(), &["sub".to_owned()]);

        assert!(reports[0].exists);
        assert!(reports[0].error.is_some());
        assert_eq!(reports[0].data_hex, "");
    }
}
