//! Moving word histories (collapse and insert range): the words from a point on take the
//! history of the words `by` away, on top of their own, so that a crash may show the old
//! layout, the new one, or any mix of the two with holes (the kernels shift one extent per
//! transaction); and the versions written after a move that a crash may show at the
//! word's older offsets.

use super::{WordMap, WordSpan, WordSrc, WordVersion, WORD_LIMIT};

/// Append `v` to `list` unless an equal version is in it.
fn add_once(list: &mut Vec<WordVersion>, v: WordVersion) {
    if !list.contains(&v) {
        list.push(v);
    }
}

impl WordMap {
    /// Words `[at, WORD_LIMIT)` move by `by` words as op `op`: collapse range (`by` < 0)
    /// drops `[at, at - by)` and moves the words after it left, insert range (`by` > 0)
    /// moves them right and leaves zeros at `[at, at + by)`.
    ///
    /// Afterwards the current version of word `w ≥ at` is the one moved there (zeros where
    /// nothing moved), and every version word `w` allowed before, zeros (a hole between
    /// extents already moved and those not yet), and every version the source word
    /// allowed, moved, stay allowed until the next durability point.
    pub fn shift(&mut self, at: u64, by: i64, op: usize) {
        if by == 0 || at >= WORD_LIMIT {
            return;
        }
        self.split(at);
        let old = self.clone();
        let zero = WordVersion {
            src: WordSrc::Zero,
            op: Some(op),
            sync_store: false,
            torn_from: None,
            moved_by: 0,
        };
        // The word that moves to `w`, if any.
        let source = |w: u64| -> Option<u64> {
            let s = i128::from(w) - i128::from(by);
            let first = if by > 0 {
                i128::from(at)
            } else {
                i128::from(at) - i128::from(by)
            };
            u64::try_from(s)
                .ok()
                .filter(|&s| i128::from(s) >= first && s < WORD_LIMIT)
        };
        let mut out = old
            .spans
            .range(..at)
            .map(|(k, v)| (*k, v.clone()))
            .collect::<Vec<_>>();
        let mut pos = at;
        while pos < WORD_LIMIT {
            let Some(here) = old.span_of(pos) else {
                break;
            };
            let src = source(pos).and_then(|s| old.span_of(s).map(|sp| (s, sp)));
            let mut end = here.end;
            match src {
                Some((s, sp)) => end = end.min(pos + (sp.end - s)),
                // Insert range: the hole ends where the moved words start.
                None if by > 0 => end = end.min(at.saturating_add(by.unsigned_abs())),
                None => {}
            }
            let mut pending = here.pending.clone();
            add_once(&mut pending, zero);
            let current = match src {
                Some((_, sp)) => {
                    for v in sp.allowed() {
                        add_once(&mut pending, v.moved(by));
                    }
                    sp.current().moved(by)
                }
                None => zero,
            };
            // The moved-in version is the current content: it goes last.
            pending.retain(|v| *v != current);
            pending.push(current);
            if pending == [here.durable] {
                pending.clear();
            }
            out.push((
                pos,
                WordSpan {
                    start: pos,
                    end,
                    durable: here.durable,
                    durable_by: here.durable_by,
                    pending,
                },
            ));
            pos = end;
        }
        self.spans = out.into_iter().collect();
    }

    /// Also allow, at words `[lo + by, hi + by)`, the current versions of words `[lo, hi)`
    /// (moved by `by`), without changing what is current there: a version written after a
    /// collapse or insert range that a crash may leave undone lands in a block that the
    /// old layout shows `by` words away.
    pub fn allow_moved(&mut self, lo: u64, hi: u64, by: i64) {
        if lo >= hi || by == 0 {
            return;
        }
        let mut pieces = Vec::new();
        for span in self.spans.range(..hi).map(|(_, s)| s) {
            if span.end > lo {
                pieces.push((span.start.max(lo), span.end.min(hi), *span.current()));
            }
        }
        for (a, b, v) in pieces {
            let (Some(ta), Some(tb)) = (a.checked_add_signed(by), b.checked_add_signed(by)) else {
                continue;
            };
            let (ta, tb) = (ta.min(WORD_LIMIT), tb.min(WORD_LIMIT));
            if ta >= tb {
                continue;
            }
            let v = v.moved(by);
            self.split(ta);
            self.split(tb);
            for span in self.spans.range_mut(ta..tb).map(|(_, s)| s) {
                if span.allowed().any(|x| *x == v) {
                    continue;
                }
                let current = *span.current();
                if span.pending.is_empty() {
                    span.pending.push(v);
                    span.pending.push(current);
                } else {
                    let last = span.pending.len() - 1;
                    span.pending.insert(last, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::Pattern;

    const SEED: u64 = 5;

    fn allowed_at(m: &WordMap, w: u64) -> Vec<[u8; 8]> {
        let span = m.span_of(w).expect("tiled");
        span.allowed().map(|v| v.bytes(SEED, w)).collect()
    }

    fn current_at(m: &WordMap, w: u64) -> [u8; 8] {
        m.current_bytes(SEED, w)
    }

    /// Words 0..8 written by pattern 1, durable; words 8..16 by pattern 2, pending.
    fn sample() -> WordMap {
        let mut m = WordMap::new();
        m.write(SEED, 0, 64, WordSrc::Pattern(1), 0, false);
        m.make_all_durable(1);
        m.write(SEED, 64, 128, WordSrc::Pattern(2), 2, false);
        m
    }

    #[test]
    fn collapse_moves_the_current_content_left_and_keeps_every_old_version() {
        let mut m = sample();
        // Collapse words [2, 4): word w ≥ 2 now shows what word w + 2 showed.
        m.shift(2, -2, 3);
        let (p1, p2) = (Pattern::new(SEED, 1), Pattern::new(SEED, 2));
        assert_eq!(current_at(&m, 1), p1.word(1));
        assert_eq!(current_at(&m, 2), p1.word(4));
        assert_eq!(current_at(&m, 5), p1.word(7));
        assert_eq!(current_at(&m, 6), p2.word(8));
        assert_eq!(current_at(&m, 13), p2.word(15));
        assert_eq!(current_at(&m, 14), [0; 8]);
        // Word 2 may hold its old data (old layout), zeros (a hole) or word 4's data.
        let at2 = allowed_at(&m, 2);
        for want in [p1.word(2), [0; 8], p1.word(4)] {
            assert!(at2.contains(&want), "{want:?} not allowed at word 2");
        }
        // Word 6 moved from word 8, which held zeros durably and pattern 2 pending.
        let at6 = allowed_at(&m, 6);
        for want in [p1.word(6), [0; 8], p2.word(8)] {
            assert!(at6.contains(&want), "{want:?} not allowed at word 6");
        }
        assert!(
            !at6.contains(&p2.word(6)),
            "pattern 2 was never at word 6's source"
        );
        // Below the collapse nothing changed: still durable.
        assert!(m.span_of(1).expect("span").is_durable());
    }

    #[test]
    fn after_a_durability_point_only_the_new_layout_is_allowed() {
        let mut m = sample();
        m.shift(2, -2, 3);
        m.make_all_durable(4);
        let p1 = Pattern::new(SEED, 1);
        assert_eq!(allowed_at(&m, 2), vec![p1.word(4)]);
        assert_eq!(allowed_at(&m, 14), vec![[0; 8]]);
    }

    #[test]
    fn insert_leaves_a_hole_and_moves_the_rest_right() {
        let mut m = sample();
        m.shift(4, 3, 3);
        let (p1, p2) = (Pattern::new(SEED, 1), Pattern::new(SEED, 2));
        assert_eq!(current_at(&m, 3), p1.word(3));
        for w in 4..7 {
            assert_eq!(current_at(&m, w), [0; 8], "word {w} is the inserted hole");
            assert!(allowed_at(&m, w).contains(&p1.word(w)), "old layout at {w}");
        }
        assert_eq!(current_at(&m, 7), p1.word(4));
        assert_eq!(current_at(&m, 11), p2.word(8));
        assert_eq!(current_at(&m, 18), p2.word(15));
        assert_eq!(current_at(&m, 19), [0; 8]);
        // Word 8 in the old layout held pattern 2; it may still show it, or word 5's data.
        let at8 = allowed_at(&m, 8);
        for want in [p2.word(8), p1.word(5), [0; 8]] {
            assert!(at8.contains(&want), "{want:?} not allowed at word 8");
        }
    }

    #[test]
    fn two_moves_compose() {
        let mut m = sample();
        m.shift(2, -2, 3);
        m.shift(2, 2, 4);
        // Back where it was: the current content is the original layout, holes at 2..4.
        let p1 = Pattern::new(SEED, 1);
        assert_eq!(current_at(&m, 1), p1.word(1));
        assert_eq!(current_at(&m, 2), [0; 8]);
        assert_eq!(current_at(&m, 4), p1.word(4));
        // Any of the intermediate layouts' words stays allowed.
        assert!(allowed_at(&m, 4).contains(&p1.word(6)));
        assert!(allowed_at(&m, 2).contains(&p1.word(2)));
    }

    #[test]
    fn allow_moved_adds_versions_without_changing_the_current_one() {
        let mut m = sample();
        m.shift(2, -2, 3);
        m.write(SEED, 16, 32, WordSrc::Pattern(9), 4, false);
        // Words 2..4 were words 4..6 before the collapse: the old layout shows the block there.
        m.allow_moved(2, 4, 2);
        let (p1, p9) = (Pattern::new(SEED, 1), Pattern::new(SEED, 9));
        assert_eq!(current_at(&m, 4), p1.word(6));
        assert!(allowed_at(&m, 4).contains(&p9.word(2)));
        assert!(allowed_at(&m, 5).contains(&p9.word(3)));
        assert!(!allowed_at(&m, 6).contains(&p9.word(4)));
        // A durable word gets the version as pending, keeping its current one.
        m.allow_moved(2, 3, -1);
        assert_eq!(current_at(&m, 1), p1.word(1));
        assert!(allowed_at(&m, 1).contains(&p9.word(2)));
    }
}
