//! The metadata tables of `repro.c`: per crash state, the modes, times and xattr values
//! the oracle allows ([`MetaState`]).

use workloads::oracle::MetaState;

use super::c_string;

/// The metadata tables of `repro.c` (`struct meta_exp` and what it points into), one entry
/// per state.
#[derive(Default)]
pub(super) struct MetaTables {
    metas: Vec<String>,
    modes: Vec<String>,
    times: Vec<String>,
    xattrs: Vec<String>,
    xvals: Vec<String>,
}

impl MetaTables {
    /// Add one state's metadata; its index in `METAS`.
    pub(super) fn push(&mut self, m: &MetaState) -> usize {
        let first_mode = self.modes.len();
        self.modes.extend(m.modes.iter().map(|b| format!("0{b:o}")));
        let mut times = |t: &Option<Vec<workloads::meta::Timestamp>>| {
            let first = self.times.len();
            let list = t.as_deref().unwrap_or(&[]);
            self.times.extend(
                list.iter()
                    .map(|t| format!("{{ {}LL, {}U }}", t.sec, t.nsec)),
            );
            (u8::from(t.is_none()), first, list.len())
        };
        let (a_any, a_first, a_n) = times(&m.atimes);
        let (m_any, m_first, m_n) = times(&m.mtimes);
        let first_xattr = self.xattrs.len();
        for (name, allowed) in &m.xattrs {
            let first = self.xvals.len();
            self.xvals.extend(allowed.values.iter().map(|v| match v {
                None => "{ 0, 0, 0 }".to_owned(),
                Some(x) => format!("{{ 1, {}U, {}ULL }}", x.id, x.len),
            }));
            self.xattrs.push(format!(
                "{{ {}, {first}, {} }}",
                c_string(name),
                allowed.values.len()
            ));
        }
        self.metas.push(format!(
            "{{ {}, {first_mode}, {}, {a_any}, {a_first}, {a_n}, {m_any}, {m_first}, {m_n}, {first_xattr}, {} }}",
            u8::from(!m.modes.is_empty()),
            m.modes.len(),
            self.xattrs.len() - first_xattr
        ));
        self.metas.len() - 1
    }

    /// The C definitions (every array ends in a zero entry, so none is empty).
    pub(super) fn tables(&self) -> String {
        let rows = |v: &[String]| v.iter().map(|r| format!("\t{r},\n")).collect::<String>();
        format!(
            "static const unsigned MODES[] = {{\n{}\t0\n}};\n\
             static const struct ts TIMES[] = {{\n{}\t{{ 0 }}\n}};\n\
             static const struct xval XVALS[] = {{\n{}\t{{ 0 }}\n}};\n\
             static const struct xattr_exp XATTRS[] = {{\n{}\t{{ 0 }}\n}};\n\
             static const struct meta_exp METAS[] = {{\n{}\t{{ 0 }}\n}};\n",
            rows(&self.modes),
            rows(&self.times),
            rows(&self.xvals),
            rows(&self.xattrs),
            rows(&self.metas)
        )
    }
}
