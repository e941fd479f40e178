//! Differential test of the namespace rules against a naive journal-prefix reference: ext4
//! and xfs log each namespace op in a transaction and commit transactions in order, so a
//! crash leaves the namespace as it was after some op `m`, where `m` is at least the last
//! op a returned promise committed (an fsync commits up to the last op that logged its
//! inode; a directory fsync up to the directory's last change; sync everything). The
//! oracle must accept every such state (it may be more permissive, never stricter),
//! link counts and symlink texts included.

use std::collections::BTreeMap;

use proptest::prelude::*;
use workloads::oracle::{expectation, CrashPoint, FsRules, Observed, Verdict};
use workloads::spec::validate;
use workloads::{NodeKind, Op, OpOutcome, Pattern, RenameFlag, Workload};

const DIRS: [&str; 2] = ["d0", "d1"];
const PATHS: [&str; 5] = ["a", "b", "d0/a", "d0/b", "d1/a"];

#[derive(Debug, Clone, PartialEq)]
struct Obj {
    kind: NodeKind,
    inode: usize,
    target: Option<String>,
}

/// The namespace after each op, and what each op logged (for the commit points).
struct Reference {
    states: Vec<BTreeMap<String, Obj>>,
    /// Per op: the inodes whose log item it changed, and the directories it changed.
    logged: Vec<(Vec<usize>, Vec<String>)>,
    /// Per op: the inode it created, if any.
    created: Vec<Option<usize>>,
    /// Per op: the inode an fsync/fdatasync of it syncs, or a pwrite writes.
    synced: Vec<Option<usize>>,
}

fn parent(p: &str) -> String {
    p.rfind('/').map_or(String::new(), |i| p[..i].to_string())
}

fn build(w: &Workload) -> Reference {
    let mut cur: BTreeMap<String, Obj> = BTreeMap::new();
    let mut held: BTreeMap<String, usize> = BTreeMap::new();
    let mut next = 0;
    let mut r = Reference {
        states: Vec::new(),
        logged: Vec::new(),
        created: Vec::new(),
        synced: Vec::new(),
    };
    let mut fresh = |kind, target: Option<String>| {
        next += 1;
        Obj {
            kind,
            inode: next - 1,
            target,
        }
    };
    for op in &w.ops {
        let (mut inodes, mut dirs, mut created, mut synced) = (vec![], vec![], None, None);
        match op {
            Op::Mkdir { dir } => {
                let o = fresh(NodeKind::Dir, None);
                created = Some(o.inode);
                inodes.push(o.inode);
                cur.insert(dir.clone(), o);
                dirs.push(parent(dir));
            }
            Op::Symlink { target, link } => {
                let o = fresh(NodeKind::Symlink, Some(target.clone()));
                inodes.push(o.inode);
                cur.insert(link.clone(), o);
                dirs.push(parent(link));
            }
            Op::Create { file, .. } => {
                if let Some(o) = cur.get(file) {
                    held.insert(file.clone(), o.inode);
                } else {
                    let o = fresh(NodeKind::File, None);
                    created = Some(o.inode);
                    inodes.push(o.inode);
                    held.insert(file.clone(), o.inode);
                    cur.insert(file.clone(), o);
                    dirs.push(parent(file));
                }
            }
            Op::Close { file } => {
                held.remove(file);
            }
            Op::Rmdir { dir: p } | Op::Unlink { file: p } => {
                if let Some(o) = cur.remove(p) {
                    inodes.push(o.inode);
                }
                held.remove(p);
                dirs.push(parent(p));
            }
            Op::Link { from, to } => {
                let o = cur[from].clone();
                inodes.push(o.inode);
                cur.insert(to.clone(), o);
                dirs.push(parent(to));
            }
            Op::Rename { from, to } | Op::Renameat2 { from, to, .. } => {
                let flags = match op {
                    Op::Renameat2 { flags, .. } => Some(*flags),
                    _ => None,
                };
                let a = cur.remove(from).expect("valid");
                let b = cur.remove(to);
                let (ha, hb) = (held.remove(from), held.remove(to));
                if flags != Some(RenameFlag::Exchange) {
                    // The moved inode's ctime, the replaced inode's link count.
                    inodes.push(a.inode);
                    inodes.extend(b.as_ref().map(|b| b.inode));
                }
                cur.insert(to.clone(), a);
                if let Some(h) = ha {
                    held.insert(to.clone(), h);
                }
                match flags {
                    Some(RenameFlag::Exchange) => {
                        cur.insert(from.clone(), b.expect("valid"));
                        if let Some(h) = hb {
                            held.insert(from.clone(), h);
                        }
                    }
                    Some(RenameFlag::Whiteout) => {
                        let o = fresh(NodeKind::Whiteout, None);
                        cur.insert(from.clone(), o);
                    }
                    _ => {}
                }
                dirs.push(parent(from));
                dirs.push(parent(to));
            }
            Op::Fsync { file } | Op::Fdatasync { file } | Op::Pwrite { file, .. } => {
                synced = held.get(file).copied();
            }
            _ => {}
        }
        r.states.push(cur.clone());
        r.logged.push((inodes, dirs));
        r.created.push(created);
        r.synced.push(synced);
    }
    r
}

/// The last op up to `k` that every returned promise up to `k` commits (`None`: nothing).
fn committed(w: &Workload, r: &Reference, k: usize) -> Option<usize> {
    let mut c: Option<usize> = None;
    for p in 0..=k {
        let upto = match &w.ops[p] {
            Op::Sync => Some(p),
            Op::Fsync { .. } => {
                r.synced[p].and_then(|i| (0..=p).rev().find(|&j| r.logged[j].0.contains(&i)))
            }
            Op::Fdatasync { .. } => {
                r.synced[p].and_then(|i| (0..=p).find(|&j| r.created[j] == Some(i)))
            }
            Op::FsyncDir { dir } => {
                let d = dir.clone().unwrap_or_default();
                let inode = (!d.is_empty())
                    .then(|| r.states[p].get(&d).map(|o| o.inode))
                    .flatten();
                (0..=p).rev().find(|&j| {
                    r.logged[j].1.contains(&d) || inode.is_some_and(|i| r.logged[j].0.contains(&i))
                })
            }
            _ => None,
        };
        c = c.max(upto);
    }
    c
}

/// What each file holds at the crash point: the bytes of the one pwrite after its create
/// (always allowed: the current version), found under whichever name the state has.
fn contents(w: &Workload, r: &Reference, k: usize) -> BTreeMap<usize, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (j, op) in w.ops.iter().enumerate().take(k + 1) {
        if let (Op::Pwrite { len, .. }, Some(i)) = (op, r.synced[j]) {
            out.insert(
                i,
                Pattern::new(w.seed, j as u32 + 1).bytes(0, *len as usize),
            );
        }
    }
    out
}

fn observe(
    state: &BTreeMap<String, Obj>,
    data: &BTreeMap<usize, Vec<u8>>,
) -> BTreeMap<String, Observed> {
    let mut links: BTreeMap<usize, u64> = BTreeMap::new();
    for o in state.values().filter(|o| o.kind == NodeKind::File) {
        *links.entry(o.inode).or_default() += 1;
    }
    state
        .iter()
        .map(|(n, o)| {
            let obs = match o.kind {
                NodeKind::File => Observed {
                    ino: o.inode as u64 + 1,
                    nlink: links[&o.inode],
                    ..Observed::present(data.get(&o.inode).cloned().unwrap_or_default())
                },
                kind => Observed::node(kind, o.target.clone()),
            };
            (n.clone(), obs)
        })
        .collect()
}

/// An op from three small numbers, on the fixed names.
fn op_of((kind, x, y): (u8, usize, usize)) -> Op {
    let p = |i: usize| PATHS[i % PATHS.len()].to_string();
    let d = |i: usize| DIRS[i % DIRS.len()].to_string();
    match kind % 16 {
        0 | 1 => Op::Mkdir { dir: d(x) },
        2 => Op::Rmdir { dir: d(x) },
        3 | 4 => Op::create(p(x)),
        5 => Op::Link {
            from: p(x),
            to: p(y),
        },
        6 => Op::Symlink {
            target: p(y),
            link: p(x),
        },
        7 => Op::Rename {
            from: p(x),
            to: p(y),
        },
        8 => Op::Renameat2 {
            from: p(x),
            to: p(y),
            flags: RenameFlag::ALL[y % 3],
        },
        9 => Op::Unlink { file: p(x) },
        10 | 11 => Op::Fsync { file: p(x) },
        12 => Op::Fdatasync { file: p(x) },
        13 => Op::FsyncDir {
            dir: (y % 3 > 0).then(|| d(y)),
        },
        14 => Op::Close { file: p(x) },
        _ => Op::Sync,
    }
}

/// The valid prefix-closed workload the choices make (an op that would not validate is
/// left out).
fn workload(choices: &[(u8, usize, usize)]) -> Workload {
    let mut w = Workload {
        name: "ns".into(),
        seed: 3,
        profile: None,
        ops: Vec::new(),
    };
    for &c in choices {
        let op = op_of(c);
        w.ops.push(op.clone());
        if validate(&w).is_err() {
            w.ops.pop();
            continue;
        }
        // Each new file gets its own bytes, so that a crash showing one file under the
        // other's name (an exchange or rename not durable) is visible.
        if let Op::Create { file, .. } = op {
            let len = 8 * (w.ops.len() as u64 % 7 + 1);
            w.ops.push(Op::Pwrite {
                file,
                off: 0,
                len,
                pattern: None,
            });
        }
    }
    w
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_journal_prefix_state_passes_the_oracle(
        choices in prop::collection::vec((any::<u8>(), 0usize..5, 0usize..5), 4..28),
        pick in any::<prop::sample::Index>(),
        pick_m in any::<prop::sample::Index>(),
    ) {
        let w = workload(&choices);
        prop_assume!(!w.ops.is_empty());
        let r = build(&w);
        let k = pick.index(w.ops.len());
        let lo = committed(&w, &r, k);
        // A state after op m, lo <= m <= k; "before op 0" is the empty directory.
        let choices_m: Vec<Option<usize>> = std::iter::once(None)
            .chain((0..=k).map(Some))
            .filter(|m| *m >= lo)
            .collect();
        let m = *pick_m.get(&choices_m);
        let empty = BTreeMap::new();
        let state = m.map_or(&empty, |m| &r.states[m]);
        let observed = observe(state, &contents(&w, &r, k));
        let outcomes: Vec<Option<OpOutcome>> = w
            .ops
            .iter()
            .map(|op| match op {
                Op::Pwrite { len, .. } => Some(OpOutcome::ok(*len as i64)),
                _ => Some(OpOutcome::ok(0)),
            })
            .collect();

        for rules in [FsRules::ext4(), FsRules::xfs(), FsRules::generic()] {
            let e = expectation(&w, &outcomes, CrashPoint::AfterOp(k), &rules);
            let res = e.check(&observed);
            let titles: Vec<String> = res.findings.iter().map(|f| f.title()).collect();
            prop_assert_eq!(res.verdict, Verdict::Pass, "{} crash after {} state after {:?}: {:?}\n{:#?}", rules.name, k, m, titles, w.ops);
        }
    }
}

/// The property above must not be vacuous: many of its workloads make namespace ops,
/// promise some of them, and leave names the oracle demands.
#[test]
fn the_reference_workloads_promise_names() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut promised, mut demanded) = (0, 0);
    for _ in 0..200 {
        let choices: Vec<(u8, usize, usize)> = (0..20)
            .map(|_| {
                (
                    (next() % 16) as u8,
                    (next() % 5) as usize,
                    (next() % 5) as usize,
                )
            })
            .collect();
        let w = workload(&choices);
        if w.ops.is_empty() {
            continue;
        }
        let r = build(&w);
        let k = w.ops.len() - 1;
        promised += usize::from(committed(&w, &r, k).is_some());
        let outcomes: Vec<Option<OpOutcome>> =
            w.ops.iter().map(|_| Some(OpOutcome::ok(0))).collect();
        let e = expectation(&w, &outcomes, CrashPoint::AfterOp(k), &FsRules::ext4());
        demanded += usize::from(
            e.files
                .values()
                .any(|f| f.existence == workloads::oracle::Existence::MustExist),
        );
    }
    assert!(promised >= 100, "{promised}/200 promise a namespace op");
    assert!(demanded >= 100, "{demanded}/200 demand a name");
}
