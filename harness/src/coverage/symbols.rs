//! Kernel functions from `/proc/kallsyms` or `System.map` text (the same `addr type name
//! [module]` lines): text symbols sorted by address, each ending where the next text symbol
//! starts. `__pfx_` symbols (the call-padding before a function on 6.12) are not
//! functions; they only end the function before them. The text is guest output: lines
//! that do not parse are skipped, and the input is bounded.

/// Longest text accepted (a 6.12 kallsyms is about 12 MiB with every symbol type).
pub const MAX_SYMBOLS_BYTES: usize = 64 << 20;
/// Longest a function is taken to be when nothing follows it (the last symbol of a module).
pub const MAX_FUNCTION_BYTES: u64 = 64 << 10;
/// Longest symbol name kept.
const MAX_NAME: usize = 256;

/// One kernel function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// First byte.
    pub addr: u64,
    /// One past its last byte (the next text symbol).
    pub end: u64,
    /// Symbol name (`ext4_file_write_iter`, `dax_iomap_rw`, `foo.cold`).
    pub name: String,
    /// Module, or `None` for the kernel image.
    pub module: Option<String>,
}

impl Function {
    /// The function's key in coverage maps: `name` or `name [module]`.
    pub fn key(&self) -> String {
        key_of(&self.name, self.module.as_deref())
    }
}

/// `name` or `name [module]`.
pub fn key_of(name: &str, module: Option<&str>) -> String {
    match module {
        Some(m) => format!("{name} [{m}]"),
        None => name.to_owned(),
    }
}

/// The name a symbol has in the source: without the compiler's `.cold`, `.isra.0`,
/// `.constprop.0`, `.part.0` suffixes.
pub fn source_name(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Text symbols of one kernel, by address.
#[derive(Debug, Clone, Default)]
pub struct KernelSymbols {
    funcs: Vec<Function>,
}

/// Symbol text that is not what it claims.
#[derive(Debug, thiserror::Error)]
pub enum SymbolsError {
    /// Larger than [`MAX_SYMBOLS_BYTES`].
    #[error("kernel symbol text of {0} bytes is larger than the {MAX_SYMBOLS_BYTES} accepted")]
    TooLarge(usize),
    /// No text symbol at all (kptr_restrict, or not symbol text).
    #[error("no kernel text symbol with a non-zero address in {0} lines")]
    Empty(usize),
}

impl KernelSymbols {
    /// Parse kallsyms / System.map text.
    pub fn parse(text: &str) -> Result<KernelSymbols, SymbolsError> {
        if text.len() > MAX_SYMBOLS_BYTES {
            return Err(SymbolsError::TooLarge(text.len()));
        }
        // (addr, is padding, name, module)
        let mut raw: Vec<(u64, bool, &str, Option<&str>)> = Vec::new();
        let mut lines = 0usize;
        for l in text.lines() {
            lines += 1;
            let mut w = l.split_whitespace();
            let (Some(a), Some(t), Some(name)) = (w.next(), w.next(), w.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(a, 16) else {
                continue;
            };
            if addr == 0 || !matches!(t, "t" | "T" | "w" | "W") || name.len() > MAX_NAME {
                continue;
            }
            let module = w
                .next()
                .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
                .filter(|m| m.len() <= MAX_NAME);
            raw.push((addr, name.starts_with("__pfx_"), name, module));
        }
        raw.sort_by_key(|r| (r.0, r.1));
        let mut funcs: Vec<Function> = Vec::new();
        for (i, &(addr, pfx, name, module)) in raw.iter().enumerate() {
            if pfx || funcs.last().is_some_and(|f| f.addr == addr) {
                continue;
            }
            let next = raw[i + 1..]
                .iter()
                .find(|r| r.0 > addr)
                .map_or(u64::MAX, |r| r.0);
            let end = next.min(addr.saturating_add(MAX_FUNCTION_BYTES));
            funcs.push(Function {
                addr,
                end,
                name: name.to_owned(),
                module: module.map(str::to_owned),
            });
        }
        if funcs.is_empty() {
            return Err(SymbolsError::Empty(lines));
        }
        Ok(KernelSymbols { funcs })
    }

    /// The function holding `addr` and the offset into it.
    pub fn find(&self, addr: u64) -> Option<(&Function, u64)> {
        let i = self
            .funcs
            .partition_point(|f| f.addr <= addr)
            .checked_sub(1)?;
        let f = &self.funcs[i];
        (addr < f.end).then(|| (f, addr - f.addr))
    }

    /// Every function, by address.
    pub fn functions(&self) -> &[Function] {
        &self.funcs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
ffffffff81000000 T _stext
ffffffff81000010 t __pfx_dax_a
ffffffff81000020 t dax_a
ffffffff81000060 T dax_b.cold
ffffffff81000060 T dax_b_alias
ffffffff81000080 D some_data
ffffffffc0001000 t __pfx_ext4_x\t[ext4]
ffffffffc0001010 t ext4_x\t[ext4]
0000000000000000 t hidden
garbage line
";

    #[test]
    fn functions_end_at_the_next_symbol_or_padding() {
        let s = KernelSymbols::parse(TEXT).expect("parse");
        let names: Vec<_> = s.functions().iter().map(|f| f.key()).collect();

        assert_eq!(names, ["_stext", "dax_a", "dax_b.cold", "ext4_x [ext4]"]);
        // _stext ends at the padding of dax_a.
        assert_eq!(s.functions()[0].end, 0xffff_ffff_8100_0010);
        assert_eq!(s.functions()[1].end, 0xffff_ffff_8100_0060);
        // dax_b.cold: the data symbol is no end; the next text symbol is far: capped.
        assert_eq!(
            s.functions()[2].end,
            0xffff_ffff_8100_0060 + MAX_FUNCTION_BYTES
        );
        let (f, off) = s.find(0xffff_ffff_c000_1013).expect("found");
        assert_eq!((f.key().as_str(), off), ("ext4_x [ext4]", 3));
        // In the padding of dax_a: no function.
        assert!(s.find(0xffff_ffff_8100_0014).is_none());
        assert!(s.find(0x1000).is_none());
    }

    #[test]
    fn source_names_drop_compiler_suffixes() {
        assert_eq!(source_name("dax_b.cold"), "dax_b");
        assert_eq!(source_name("ext4_x.isra.0"), "ext4_x");
        assert_eq!(source_name("plain"), "plain");
    }

    #[test]
    fn no_text_symbol_is_an_error_and_size_is_bounded() {
        assert!(matches!(
            KernelSymbols::parse("0000000000000000 T x\n"),
            Err(SymbolsError::Empty(1))
        ));
        let huge = "x".repeat(MAX_SYMBOLS_BYTES + 1);
        assert!(matches!(
            KernelSymbols::parse(&huge),
            Err(SymbolsError::TooLarge(_))
        ));
    }
}
