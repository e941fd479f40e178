//! Function definitions in kernel C text, found by kernel coding style (the body's `{` alone
//! at column 0, its `}` alone at column 0): their names ([`definitions`], for grouping
//! functions by source file) and the lines they span ([`definition_spans`], for the
//! functions a patch changes). No C parser: macros that define functions, and bodies not in
//! kernel style, are not seen. Pure.

use std::collections::BTreeSet;

/// Lines above a `{` searched for the function's signature.
const MAX_SIGNATURE_LINES: usize = 12;

/// One function definition: its name and the lines it spans (1-based, inclusive), from the
/// first line of its signature to its closing `}` (the end of the text if there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Function name.
    pub name: String,
    /// First line of the signature.
    pub first: usize,
    /// Line of the closing brace.
    pub last: usize,
}

impl Span {
    /// Does the span hold line `line`?
    pub fn holds(&self, line: usize) -> bool {
        (self.first..=self.last).contains(&line)
    }
}

/// The names of the functions defined in C source `text` (see [`definition_spans`]).
pub fn definitions(text: &str) -> BTreeSet<String> {
    definition_spans(text).into_iter().map(|s| s.name).collect()
}

/// The functions defined in C source `text`, in order: a `{` alone at column 0 opens a body;
/// the identifier before the first `(` of the lines above it (up to a blank line, a `;`, a
/// `}`, a comment or a preprocessor line) is the function; the first line after it that
/// starts with `}` closes it. Initialisers (`= {`) never match.
pub fn definition_spans(text: &str) -> Vec<Span> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_end() != "{" {
            continue;
        }
        let mut sig = Vec::new();
        for prev in lines[..i].iter().rev().take(MAX_SIGNATURE_LINES) {
            let t = prev.trim_end();
            let c = t.trim_start();
            let comment = c.starts_with('*') || c.starts_with("/*") || c.starts_with("//");
            if t.is_empty() || t.ends_with(';') || t.ends_with('}') || t.starts_with('#') || comment
            {
                break;
            }
            sig.push(t);
        }
        let first = i + 1 - sig.len();
        sig.reverse();
        let sig = sig.join(" ");
        let Some(name) = name_before_paren(&sig) else {
            continue;
        };
        let last = lines[i + 1..]
            .iter()
            .position(|l| l.starts_with('}'))
            .map_or(lines.len(), |k| i + 1 + k + 1);
        out.push(Span {
            name: name.to_owned(),
            first,
            last,
        });
    }
    out
}

fn name_before_paren(sig: &str) -> Option<&str> {
    let head = &sig[..sig.find('(')?];
    if head.contains('=') {
        return None;
    }
    let name = head
        .trim_end()
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()?;
    let ok = !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit());
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_in_kernel_style_are_found() {
        let c = "\
static const struct iomap_ops x = {
\t.begin = y,
};

/*
 * Unlike filemap_fault() we do not retry.
 */
static vm_fault_t dax_iomap_pte_fault(struct vm_fault *vmf, pfn_t *pfnp,
\t\t\t       int *iomap_errp, const struct iomap_ops *ops)
{
\treturn 0;
}

int dax_writeback_mapping_range(struct address_space *mapping,
\t\tstruct dax_device *dax_dev, struct writeback_control *wbc)
{
}
EXPORT_SYMBOL_GPL(dax_writeback_mapping_range);
#define FOO(x) \\
{
static inline void *dax_make_entry(pfn_t pfn, unsigned long flags) {
}
";

        let names: Vec<String> = definitions(c).into_iter().collect();

        assert_eq!(
            names,
            ["dax_iomap_pte_fault", "dax_writeback_mapping_range"]
        );
    }

    #[test]
    fn spans_run_from_the_signature_to_the_closing_brace() {
        let c = "\
/* 1 */
static int a(int x,
\t     int y)
{
\treturn x + y;
}

int b(void)
{
\tif (1) {
\t\treturn 0;
\t}
}
";
        let spans = definition_spans(c);

        assert_eq!(
            spans,
            [
                Span {
                    name: "a".into(),
                    first: 2,
                    last: 6
                },
                Span {
                    name: "b".into(),
                    first: 8,
                    last: 13
                },
            ]
        );
        assert!(spans[0].holds(2) && spans[0].holds(6) && !spans[0].holds(7));
    }

    #[test]
    fn a_body_without_its_closing_brace_runs_to_the_end() {
        let spans = definition_spans("void f(void)\n{\n\tg();\n");
        assert_eq!(spans[0].last, 3);
        assert!(definition_spans("").is_empty() && definition_spans("{\n}\n").is_empty());
    }
}
