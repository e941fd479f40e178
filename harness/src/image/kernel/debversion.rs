//! Debian version numbers (`[epoch:]upstream[-revision]`) compared the way dpkg compares
//! them, and read from package file names (`name_version_arch.deb`).

use std::cmp::Ordering;

/// Compare two Debian versions like `dpkg --compare-versions`: epochs numerically, then
/// the upstream versions, then the revisions, each by alternating non-digit runs (letters
/// sort before other characters, `~` before everything, even the end) and numeric runs.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

/// The version in a package file name `name_version_arch.deb` (`%3a` stands for the
/// epoch's colon, as apt writes it), if the name has that shape.
pub fn from_file_name(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".deb")?;
    let mut parts = stem.split('_');
    let (_name, version, _arch) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version.is_empty() {
        return None;
    }
    Some(version.replace("%3a", ":").replace("%3A", ":"))
}

/// (epoch, upstream, revision). A missing or malformed epoch is 0; a missing revision is
/// empty (which compares equal to `0`).
fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => (e.parse().unwrap_or(0), rest),
        None => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// Sort weight of one character of a non-digit run; `None` is the end of the run.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`.
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        // The non-digit runs, character by character.
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let wa = weight(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let wb = weight(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            if i < a.len() && !digit(a, i) {
                i += 1;
            }
            if j < b.len() && !digit(b, j) {
                j += 1;
            }
        }
        // The numeric runs, without leading zeros: longer is larger, else the first
        // differing digit decides.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let (start_a, start_b) = (i, j);
        while digit(a, i) {
            i += 1;
        }
        while digit(b, j) {
            j += 1;
        }
        let (na, nb) = (&a[start_a..i], &b[start_b..j]);
        let by_value = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if by_value != Ordering::Equal {
            return by_value;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs with `a < b`, from dpkg's own test suite and from kernel package versions.
    const ASCENDING: &[(&str, &str)] = &[
        ("6.12.9-1~bpo12+1", "6.12.10-1~bpo12+1"),
        ("6.12.95-1~bpo12+1", "6.12.95-1"),
        ("1.0~rc1", "1.0"),
        ("1.0~~", "1.0~"),
        ("1.0~", "1.0"),
        ("1.0", "1.0a"),
        ("1.0a", "1.0+"),
        ("1.0-2", "1.0-10"),
        ("2.0", "1:1.0"),
        ("1:9.9", "2:0.1"),
        ("1.0", "1.0.1"),
        ("1.2.3", "1.2.3-1"),
        ("0.9", "1.0"),
        ("1.09", "1.10"),
        ("6.12.95+deb12", "6.12.95+deb12.1"),
    ];

    #[test]
    fn versions_order_like_dpkg() {
        for (lo, hi) in ASCENDING {
            assert_eq!(compare(lo, hi), Ordering::Less, "{lo} < {hi}");
            assert_eq!(compare(hi, lo), Ordering::Greater, "{hi} > {lo}");
        }
    }

    #[test]
    fn equal_versions_compare_equal() {
        let same = [
            ("1.0", "1.0"),
            ("1.0-0", "1.0"),
            ("0:1.0", "1.0"),
            ("1.001", "1.1"),
        ];

        for (a, b) in same {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} = {b}");
        }
    }

    #[test]
    fn versions_come_from_package_file_names() {
        let names = [
            "linux-image-6.12.95+deb12-amd64_6.12.95-1~bpo12+1_amd64.deb",
            "linux-image-6.1.0-28-amd64_1%3a6.1.119-1_amd64.deb",
            "linux-image-x.deb",
            "linux-image-a_b_c_d.deb",
        ];

        let versions: Vec<_> = names.iter().map(|n| from_file_name(n)).collect();

        assert_eq!(
            versions,
            [
                Some("6.12.95-1~bpo12+1".to_owned()),
                Some("1:6.1.119-1".to_owned()),
                None,
                None
            ]
        );
    }
}
