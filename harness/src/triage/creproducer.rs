//! The standalone C reproducer: `repro.c` (the workload's ops up to the crash point as a
//! table, the oracle's expectation at the crash point as tables, and a fixed program from
//! `images/repro/repro_run.c.in` + `repro_verify.c.in` that runs the ops, stops at the crash
//! point and verifies the files after the crash) and `repro.sh` (build / run / verify in a
//! guest).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use workloads::oracle::{CrashPoint, Existence, Expectation, WordSrc, WordVersion, WORD};
use workloads::{Op, OpOutcome, Workload};

mod meta_tables;
mod op_rows;

use meta_tables::MetaTables;
use op_rows::op_row;

use super::TriageError;
use crate::records::finding::{point_parts, CrashLabel};

/// The fixed part of `repro.c`: header, types, patterns and running the ops …
const C_RUN: &str = include_str!("../../../images/repro/repro_run.c.in");
/// … then verifying after the crash and `main`.
const C_VERIFY: &str = include_str!("../../../images/repro/repro_verify.c.in");
/// The fixed part of `repro.sh`.
const SH_TEMPLATE: &str = include_str!("../../../images/repro/repro.sh.in");

/// What a reproducer is made from.
#[derive(Debug, Clone, Copy)]
pub struct CReproInput<'a> {
    /// Failure title (for the header).
    pub title: &'a str,
    /// The workload (only ops up to the crash point are performed).
    pub workload: &'a Workload,
    /// The crash point.
    pub point: CrashPoint,
    /// Op outcomes of the powercut run (the program checks it gets the same ones).
    pub outcomes: &'a [Option<OpOutcome>],
    /// The oracle's expectation at the crash point (computed from those outcomes).
    pub expectation: &'a Expectation,
    /// File system (`ext4`).
    pub fs: &'a str,
    /// Mutant, if any.
    pub mutant: Option<&'a str>,
    /// Guest kernel release.
    pub kernel: &'a str,
    /// Found by the cache crash model: where the power cut has to fall, and what was lost.
    pub cache: Option<&'a CacheNote>,
}

/// A cache-model failure, for the reproducer's header: the loss needs a power cut while
/// lines are still in the CPU cache, which neither QEMU nor a QMP `stop` can give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheNote {
    /// Where the cut has to fall, e.g. `right after op 3 (msync) returns, before the next
    /// fence`.
    pub cut: String,
    /// The lost ranges of the campaign's crash state, one sentence each (from
    /// `lost-lines.json`; op numbers are those of `workload.yaml`).
    pub lost: Vec<String>,
}

impl CacheNote {
    /// Where a cut of `at` in the context of `point` (op `kind`) lies, in words.
    pub fn cut_words(point: CrashPoint, kind: &str, at: crate::cache_model::CutAt) -> String {
        use crate::cache_model::CutAt;
        match (point, at) {
            (CrashPoint::AfterOp(k), CutAt::OpDone) => {
                format!("right after op {k} ({kind}) returns, before any later fence")
            }
            (CrashPoint::AfterOp(k), CutAt::Fence(n)) => format!(
                "at fence #{n} (sfence, mfence or locked instruction, counted from 0) after op {k} ({kind}) returned"
            ),
            (CrashPoint::InsideOp(k), CutAt::Fence(n)) => format!(
                "inside op {k} ({kind}), right after its fence #{n} (sfence, mfence or locked instruction, counted from 0)"
            ),
            (CrashPoint::InsideOp(k), CutAt::OpDone) => format!("inside op {k} ({kind})"),
        }
    }

    /// The header paragraph (C comment lines, each starting ` * `).
    fn comment(&self) -> String {
        const LINES: [&str; 6] = [
            "CACHE MODEL: powercut found this loss with its cache-line crash model. The lost",
            "bytes were still in the CPU cache (never written back, written back without a",
            "following fence, or non-temporal stores without an sfence) when the power was cut.",
            "QEMU has no CPU cache: a QMP `stop` + copy or a sysrq reboot keeps every store,",
            "so this program does NOT show the loss there. It needs a power cut on real",
            "hardware (without eADR) at this moment:",
        ];
        let mut out = String::new();
        for l in LINES {
            out.push_str("\n * ");
            out.push_str(l);
        }
        out.push_str("\n *     ");
        out.push_str(&comment_safe(&self.cut));
        out.push_str(
            "\n * What the model lost in the campaign's run (workload.yaml's op numbers):",
        );
        for l in &self.lost {
            out.push_str("\n *     ");
            out.push_str(&comment_safe(l));
        }
        out.push_str(
            "\n * Even then the loss is not certain: a line may be written back at any time.\n *",
        );
        out
    }
}

impl CReproInput<'_> {
    fn crash_label(&self) -> String {
        CrashLabel::in_workload(self.point, self.workload).to_string()
    }

    /// Ops the program performs: up to and including the crash op.
    fn ops(&self) -> &[Op] {
        let (k, _) = point_parts(self.point);
        let n = (k + 1).min(self.workload.ops.len());
        &self.workload.ops[..n]
    }
}

/// Text safe inside a C comment (and a shell comment line).
fn comment_safe(s: &str) -> String {
    s.replace("*/", "* /").replace(['\n', '\r'], " ")
}

/// A C string literal.
fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e if b != b'?' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

/// Substitute the header placeholders of a template.
fn fill_header(template: &str, input: &CReproInput<'_>) -> String {
    template
        .replace("@TITLE@", &comment_safe(input.title))
        .replace("@WORKLOAD@", &comment_safe(&input.workload.name))
        .replace("@NOPS@", &input.ops().len().to_string())
        .replace("@SEED@", &input.workload.seed.to_string())
        .replace("@CRASH_LABEL@", &input.crash_label())
        .replace("@KERNEL@", &comment_safe(input.kernel))
        .replace("@FS@", &comment_safe(input.fs))
        .replace("@MUTANT@", &comment_safe(input.mutant.unwrap_or("none")))
        .replace(
            "@CACHE_NOTE@",
            &input.cache.map_or_else(String::new, CacheNote::comment),
        )
}

/// `repro.c`.
pub fn render_c(input: &CReproInput<'_>) -> String {
    let program = format!("{C_RUN}\n{C_VERIFY}");
    fill_header(&program, input).replace("@GENERATED@", &generated(input))
}

/// `repro.sh`.
pub fn render_sh(input: &CReproInput<'_>) -> String {
    fill_header(SH_TEMPLATE, input)
}

/// Write `repro.c` and an executable `repro.sh` into `dir`.
pub fn write_reproducer(dir: &Path, input: &CReproInput<'_>) -> Result<(), TriageError> {
    super::write_file(&dir.join("repro.c"), &render_c(input))?;
    let sh = dir.join("repro.sh");
    super::write_file(&sh, &render_sh(input))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| TriageError::io(&sh, e))
}

/// Name table: every file name of the ops and the expectation, in order of appearance.
fn names(input: &CReproInput<'_>) -> BTreeMap<String, usize> {
    let mut map = BTreeMap::new();
    let ops = input.ops().iter().flat_map(Op::files);
    for n in ops.chain(input.expectation.files.keys().map(String::as_str)) {
        let next = map.len();
        map.entry(n.to_owned()).or_insert(next);
    }
    map
}

fn bytes_init(b: &[u8; 8]) -> String {
    let items: Vec<String> = b.iter().map(|x| format!("0x{x:02x}")).collect();
    format!("{{ {} }}", items.join(", "))
}

fn version_row(v: &WordVersion) -> String {
    let src = match v.src {
        WordSrc::Zero => ".src = SRC_ZERO".to_owned(),
        WordSrc::Pattern(id) if v.moved_by != 0 => {
            format!(".src = SRC_PATTERN, .id = {id}U, .moved = {}LL", v.moved_by)
        }
        WordSrc::Pattern(id) => format!(".src = SRC_PATTERN, .id = {id}U"),
        WordSrc::Bytes(b) => format!(".src = SRC_BYTES, .lit = {}", bytes_init(&b)),
    };
    let torn = v.torn_from.map_or_else(String::new, |old| {
        format!(", .torn = 1, .old = {}", bytes_init(&old))
    });
    let op = v.op.map_or(-1, |k| k as i64);
    format!("\t{{ {src}{torn}, .op = {op} }},\n")
}

/// The generated definitions: constants, names, ops and the expectation tables.
fn generated(input: &CReproInput<'_>) -> String {
    let names = names(input);
    let (k, inside) = point_parts(input.point);
    let mut g = String::new();
    let _ = writeln!(
        g,
        "static const uint64_t SEED = {}ULL;",
        input.workload.seed
    );
    let _ = writeln!(
        g,
        "static const char *const CRASH_LABEL = {};",
        c_string(&input.crash_label())
    );
    let _ = writeln!(
        g,
        "static const char *const CUT_NOTE = {};",
        c_string(&input.cache.map_or_else(String::new, |c| format!(
            "found by the cache model: the loss needs a real power cut {} (QEMU keeps every store)",
            c.cut
        )))
    );
    let _ = writeln!(g, "#define CRASH_OP {k}");
    let _ = writeln!(g, "#define CRASH_INSIDE {}", u8::from(inside));
    let _ = writeln!(g, "#define N_NAMES {}", names.len());
    let mut by_index: Vec<(&String, &usize)> = names.iter().collect();
    by_index.sort_by_key(|(_, i)| **i);
    let list: Vec<String> = by_index.iter().map(|(n, _)| c_string(n)).collect();
    let _ = writeln!(
        g,
        "static const char *const NAMES[N_NAMES + 1] = {{ {}{}NULL }};",
        list.join(", "),
        if list.is_empty() { "" } else { ", " }
    );

    let ops = input.ops();
    let _ = writeln!(g, "#define N_OPS {}", ops.len());
    g.push_str("static const struct op OPS[N_OPS + 1] = {\n");
    for (i, op) in ops.iter().enumerate() {
        let expect = match input.outcomes.get(i).copied().flatten() {
            Some(o) => i64::from(o.errno.unwrap_or(0)),
            None => -1,
        };
        g.push_str(&op_row(op, i, &names, expect));
    }
    g.push_str("\t{ .kind = -1 }\n};\n");

    let (mut versions, mut spans, mut sizes, mut states, mut files) = (
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    );
    let (mut nv, mut ns, mut nz, mut nst) = (0usize, 0usize, 0usize, 0usize);
    let mut meta = MetaTables::default();
    for (name, fe) in &input.expectation.files {
        let existence = match fe.existence {
            Existence::MustExist => "MUST_EXIST",
            Existence::MustNotExist => "MUST_NOT_EXIST",
            Existence::Either => "EITHER",
        };
        let name_idx = names.get(name).copied().unwrap_or(0);
        let _ = writeln!(
            files,
            "\t{{ .name = {name_idx}, .existence = {existence}, .first_state = {nst}, .n_states = {} }},",
            fe.states.len()
        );
        for st in &fe.states {
            let (first_size, first_span) = (nz, ns);
            for r in &st.sizes.0 {
                let _ = writeln!(sizes, "\t{{ {}ULL, {}ULL }},", r.lo, r.hi);
                nz += 1;
            }
            let max_words = st.sizes.max().div_ceil(WORD);
            for span in st.words.iter().take_while(|s| s.start < max_words) {
                let first = nv;
                for v in span.allowed() {
                    versions.push_str(&version_row(v));
                    nv += 1;
                }
                let _ = writeln!(
                    spans,
                    "\t{{ {}ULL, {}ULL, {first}, {} }},",
                    span.start,
                    span.end.min(max_words),
                    nv - first
                );
                ns += 1;
            }
            let meta_idx = meta.push(&st.meta);
            let _ = writeln!(
                states,
                "\t{{ {first_size}, {}, {first_span}, {}, {meta_idx} }}, /* {name}: inode {}{} */",
                nz - first_size,
                ns - first_span,
                st.inode,
                if st.current { ", current" } else { "" }
            );
            nst += 1;
        }
    }
    let _ = write!(
        g,
        "static const struct version VERSIONS[] = {{\n{versions}\t{{ .src = -1 }}\n}};\n\
         static const struct span SPANS[] = {{\n{spans}\t{{ 0 }}\n}};\n\
         static const struct size_range SIZES[] = {{\n{sizes}\t{{ 0 }}\n}};\n\
         {}\
         static const struct state STATES[] = {{\n{states}\t{{ 0 }}\n}};\n\
         #define N_FILES {}\n\
         static const struct file_exp FILES[N_FILES + 1] = {{\n{files}\t{{ 0 }}\n}};\n",
        meta.tables(),
        input.expectation.files.len()
    );
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::oracle::{expectation, FsRules};

    fn input_parts() -> (Workload, Vec<Option<OpOutcome>>) {
        let w = Workload {
            name: "seed-1-min".into(),
            seed: 1,
            profile: None,
            ops: vec![
                Op::create("f0"),
                Op::Pwrite {
                    file: "f0".into(),
                    off: 4,
                    len: 20,
                    pattern: Some(9),
                },
                Op::Fsync { file: "f0".into() },
                Op::Unlink { file: "f0".into() },
            ],
        };
        let outcomes = vec![
            Some(OpOutcome::ok(0)),
            Some(OpOutcome::ok(20)),
            Some(OpOutcome::ok(0)),
            None,
        ];
        (w, outcomes)
    }

    #[test]
    fn a_moved_pattern_version_names_where_its_words_came_from() {
        let v = WordVersion {
            src: WordSrc::Pattern(3),
            op: Some(2),
            sync_store: false,
            torn_from: None,
            moved_by: -512,
        };
        assert_eq!(
            version_row(&v),
            "\t{ .src = SRC_PATTERN, .id = 3U, .moved = -512LL, .op = 2 },\n"
        );
        let unmoved = WordVersion { moved_by: 0, ..v };
        assert!(!version_row(&unmoved).contains(".moved"));
    }

    #[test]
    fn the_program_holds_the_ops_up_to_the_crash_point_and_the_expectation() {
        let (w, outcomes) = input_parts();
        let point = CrashPoint::AfterOp(2);
        let exp = expectation(&w, &outcomes, point, &FsRules::ext4());
        let input = CReproInput {
            title: "missing-file: f0 after op 2 (fsync)",
            workload: &w,
            point,
            outcomes: &outcomes,
            expectation: &exp,
            fs: "ext4",
            mutant: Some("m5"),
            kernel: "6.12.0-test",
            cache: None,
        };

        let c = render_c(&input);

        assert!(c.contains("failure:  missing-file: f0 after op 2 (fsync)"));
        assert!(
            c.contains("#define N_OPS 3\n"),
            "ops after the crash op are left out"
        );
        assert!(c.contains("#define CRASH_OP 2\n#define CRASH_INSIDE 0\n"));
        assert!(c.contains(
            ".kind = K_PWRITE, .file = 0, .off = 4ULL, .len = 20ULL, .pattern = 9U, .expect = 0"
        ));
        assert!(
            c.contains("{ .name = 0, .existence = MUST_EXIST, .first_state = 0, .n_states = 1 }")
        );
        assert!(c.contains(".src = SRC_PATTERN, .id = 9U"));
        assert!(c.contains("insmod powercut_mutant.ko\n * mutants=m5"));
        assert!(!c.contains('@'), "every placeholder is filled");
        assert!(render_sh(&input).contains("mount -t ext4 -o dax"));
    }

    #[test]
    fn a_cache_model_failure_says_it_needs_a_real_power_cut_and_where() {
        let (w, outcomes) = input_parts();
        let point = CrashPoint::AfterOp(2);
        let exp = expectation(&w, &outcomes, point, &FsRules::ext4());
        let note = CacheNote {
            cut: CacheNote::cut_words(point, "fsync", crate::cache_model::CutAt::OpDone),
            lost: vec![
                "f0 [0..64) written by user stores through mmap in op 1 (store), \
                        fsync in op 2 returned without a cache-line write-back"
                    .into(),
            ],
        };
        let input = CReproInput {
            title: "data-loss: f0 [0..64) after op 2 (fsync)",
            workload: &w,
            point,
            outcomes: &outcomes,
            expectation: &exp,
            fs: "ext4",
            mutant: Some("m1"),
            kernel: "6.12.0-test",
            cache: Some(&note),
        };

        let c = render_c(&input);

        assert!(
            c.contains(" * CACHE MODEL: powercut found this loss"),
            "{c}"
        );
        assert!(c.contains("needs a power cut on real\n * hardware"), "{c}");
        assert!(
            c.contains(" *     right after op 2 (fsync) returns, before any later fence\n"),
            "{c}"
        );
        assert!(
            c.contains(" *     f0 [0..64) written by user stores"),
            "{c}"
        );
        assert!(c.contains("static const char *const CUT_NOTE = \"found by the cache model"));
        assert!(!c.contains('@'), "every placeholder is filled");
    }

    #[test]
    fn c_strings_and_comments_are_escaped() {
        assert_eq!(c_string("f\"0\\?\n"), "\"f\\\"0\\\\\\077\\012\"");
        assert_eq!(comment_safe("a */ b\nc"), "a * / b c");
    }
}
