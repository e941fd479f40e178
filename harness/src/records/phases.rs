//! Where the time of a run and of a check goes, phase by phase ([`RunPhases`],
//! [`CheckPhases`]), and their sums over a campaign ([`PhaseTotals`]). Measured with
//! `Instant` around the real phases; journals written before these figures read back
//! without them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Microseconds of a duration, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The phases of one run in a workload VM, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunPhases {
    /// QEMU start to the first op (restore or boot, mount, modules, agent).
    pub start_us: u64,
    /// The ops, host side: from sending the workload to the agent's end (snapshot model:
    /// includes the pauses that take the crash images).
    pub ops_us: u64,
    /// Taking the crash images: snapshot copies (inside `ops_us`), or the cache model's
    /// QEMU quit, trace parse and state build (after the ops).
    pub images_us: u64,
}

/// The phases of one check of a crash image, µs. A check whose image repeats one already
/// checked spends only `hash_us` and `oracle_us`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckPhases {
    /// Content hash of the crash image (dedupe).
    pub hash_us: u64,
    /// Dropping the checker guest's caches and writing the image into its pmem.
    pub copy_us: u64,
    /// Mount in the checker VM (journal recovery), as the guest timed it.
    pub mount_us: u64,
    /// Reading the files back through the agent: the rest of the one request's round trip
    /// (the guest's reading, the answer over SSH, decoding).
    pub read_us: u64,
    /// Unmount and dropping the guest's caches of the device, as the guest timed it.
    pub umount_us: u64,
    /// Host fsck of the recovered image.
    pub fsck_us: u64,
    /// The oracle: the expectation at the crash point and the judgement of the read-back.
    pub oracle_us: u64,
}

impl CheckPhases {
    /// The phases' sum, µs.
    pub fn sum(&self) -> u64 {
        [
            self.hash_us,
            self.copy_us,
            self.mount_us,
            self.read_us,
            self.umount_us,
            self.fsck_us,
            self.oracle_us,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }
}

/// Sums of the phases over a campaign's finished items, in ms (what bounds a sweep).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseTotals {
    /// Runs with phase figures.
    pub runs: usize,
    /// Checks with phase figures.
    pub checks: usize,
    /// Checks that reused the read-back of an identical crash image checked before.
    pub reused: usize,
    /// Run phases, ms: `start`, `ops`, `images`.
    pub run_ms: RunTotals,
    /// Check phases, ms: `hash`, `copy`, `mount`, `read`, `umount`, `fsck`, `oracle`.
    pub check_ms: CheckTotals,
}

/// Run phase sums, ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunTotals {
    /// QEMU start to the first op.
    pub start: f64,
    /// The ops.
    pub ops: f64,
    /// Taking or building the crash images.
    pub images: f64,
}

/// Check phase sums, ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckTotals {
    /// Content hash.
    pub hash: f64,
    /// Into the checker.
    pub copy: f64,
    /// Mount and journal recovery.
    pub mount: f64,
    /// Read-back.
    pub read: f64,
    /// Unmount.
    pub umount: f64,
    /// Host fsck.
    pub fsck: f64,
    /// Oracle.
    pub oracle: f64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl PhaseTotals {
    /// Add one run's phases.
    pub fn add_run(&mut self, p: &RunPhases) {
        self.runs += 1;
        self.run_ms.start += ms(p.start_us);
        self.run_ms.ops += ms(p.ops_us);
        self.run_ms.images += ms(p.images_us);
    }

    /// Add one check's phases; `reused` when it reused an earlier read-back.
    pub fn add_check(&mut self, p: &CheckPhases, reused: bool) {
        self.checks += 1;
        self.reused += usize::from(reused);
        let t = &mut self.check_ms;
        t.hash += ms(p.hash_us);
        t.copy += ms(p.copy_us);
        t.mount += ms(p.mount_us);
        t.read += ms(p.read_us);
        t.umount += ms(p.umount_us);
        t.fsck += ms(p.fsck_us);
        t.oracle += ms(p.oracle_us);
    }

    /// Add another campaign's totals (a kernel matrix sums its kernels').
    pub fn add(&mut self, o: &PhaseTotals) {
        self.runs += o.runs;
        self.checks += o.checks;
        self.reused += o.reused;
        self.run_ms.start += o.run_ms.start;
        self.run_ms.ops += o.run_ms.ops;
        self.run_ms.images += o.run_ms.images;
        let (t, u) = (&mut self.check_ms, &o.check_ms);
        t.hash += u.hash;
        t.copy += u.copy;
        t.mount += u.mount;
        t.read += u.read;
        t.umount += u.umount;
        t.fsck += u.fsck;
        t.oracle += u.oracle;
    }

    /// The check phases as (name, ms) rows, in pipeline order.
    pub fn check_rows(&self) -> [(&'static str, f64); 7] {
        let t = &self.check_ms;
        [
            ("hash", t.hash),
            ("copy", t.copy),
            ("mount", t.mount),
            ("read", t.read),
            ("umount", t.umount),
            ("fsck", t.fsck),
            ("oracle", t.oracle),
        ]
    }

    /// The run phases as (name, ms) rows.
    pub fn run_rows(&self) -> [(&'static str, f64); 3] {
        let t = &self.run_ms;
        [("start", t.start), ("ops", t.ops), ("images", t.images)]
    }

    /// One line per phase group: `checks 40 (12 reused): copy 1.2 s, mount 3.4 s, …`.
    pub fn summary_lines(&self) -> Vec<String> {
        let fmt = |rows: &[(&str, f64)]| {
            rows.iter()
                .map(|(n, v)| format!("{n} {:.1} s", v / 1000.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            format!("runs {}: {}", self.runs, fmt(&self.run_rows())),
            format!(
                "checks {} ({} reused an identical image's read-back): {}",
                self.checks,
                self.reused,
                fmt(&self.check_rows())
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_runs_and_checks_in_ms() {
        let mut t = PhaseTotals::default();
        t.add_run(&RunPhases {
            start_us: 800_000,
            ops_us: 100_000,
            images_us: 2_000,
        });
        t.add_check(
            &CheckPhases {
                copy_us: 1_500,
                fsck_us: 90_000,
                ..CheckPhases::default()
            },
            false,
        );
        t.add_check(
            &CheckPhases {
                hash_us: 500,
                oracle_us: 250,
                ..CheckPhases::default()
            },
            true,
        );

        assert_eq!((t.runs, t.checks, t.reused), (1, 2, 1));
        assert_eq!(t.run_ms.start, 800.0);
        assert_eq!(t.check_ms.copy, 1.5);
        assert_eq!(t.check_ms.hash, 0.5);
        assert_eq!(t.check_ms.fsck, 90.0);
        assert!(t.summary_lines()[1].contains("2 (1 reused"));
    }

    #[test]
    fn phases_missing_from_a_line_read_as_zero() {
        let p: CheckPhases = serde_json::from_str(r#"{"mount_us":7}"#).expect("parses");

        assert_eq!(p.mount_us, 7);
        assert_eq!(p.sum(), 7);
    }
}
