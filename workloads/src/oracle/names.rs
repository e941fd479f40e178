//! Directory entry names in the oracle's model: per path, the binding a crash is sure to
//! keep (the durable one) and the bindings made since, each with the op that made it, so
//! that a journal commit can make durable exactly the bindings made up to one op.

/// One directory entry name (a path below the workload directory).
#[derive(Debug, Clone, Default)]
pub(crate) struct Name {
    /// Inode durably bound to the name (`None`: durably absent).
    pub durable: Option<usize>,
    /// The op whose promise made `durable` durable (none: it was never bound).
    pub durable_by: Option<usize>,
    /// Bindings since, oldest first, each with the op that made it; the last is current.
    pub pending: Vec<(Option<usize>, usize)>,
    /// The current binding was made by a `create` of a new file (not a rename).
    pub created_here: bool,
    /// An op on it had an unknown outcome: bindings are never made durable again.
    pub tainted: bool,
}

impl Name {
    /// The current binding.
    pub fn current(&self) -> Option<usize> {
        self.pending.last().map_or(self.durable, |p| p.0)
    }

    /// Bind the name to `to` as op `k`.
    pub fn bind(&mut self, to: Option<usize>, k: usize) {
        if self.current() != to {
            self.pending.push((to, k));
        }
        self.created_here = false;
    }

    /// Every binding is durable, promised by op `by`.
    pub fn make_durable(&mut self, by: usize) {
        self.commit_through(usize::MAX, by);
    }

    /// The bindings made by ops up to `j` are durable (a journal commit of op `j`'s
    /// transaction, promised by op `by`): the last of them becomes the durable one.
    pub fn commit_through(&mut self, j: usize, by: usize) {
        if self.tainted {
            return;
        }
        let n = self.pending.partition_point(|p| p.1 <= j);
        if n == 0 {
            return;
        }
        self.durable = self.pending[n - 1].0;
        self.durable_by = Some(by);
        self.pending.drain(..n);
    }

    /// Every binding a crash may leave, deduplicated, the current one first.
    pub fn candidates(&self) -> Vec<Option<usize>> {
        let mut out = vec![self.current()];
        for b in std::iter::once(self.durable).chain(self.pending.iter().map(|p| p.0)) {
            if !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_keeps_the_bindings_made_after_it_pending() {
        let mut n = Name::default();
        n.bind(Some(0), 1);
        n.bind(None, 3);
        n.bind(Some(1), 5);

        n.commit_through(3, 4);

        assert_eq!(n.durable, None);
        assert_eq!(n.durable_by, Some(4));
        assert_eq!(n.candidates(), vec![Some(1), None]);
    }

    #[test]
    fn a_tainted_name_is_never_committed() {
        let mut n = Name::default();
        n.bind(Some(0), 1);
        n.tainted = true;

        n.make_durable(2);

        assert_eq!(n.candidates(), vec![Some(0), None]);
    }
}
