//! A file's bytes as a short list of runs, for the agent's read-back: zero words, words of a
//! known data [`Pattern`] (recomputed on the host from seed, pattern id and offset, shifted
//! by the words a collapse or insert range moved them), and literal bytes for everything
//! else. Lossless by construction: [`decode`] rebuilds exactly
//! the bytes [`encode`] was given, whatever the pattern ids it was told about. What crosses
//! the guest's SSH channel shrinks from two hex digits per byte to a few dozen bytes per run.
//!
//! Untrusted on the way back: [`decode`] bounds the total length by the size the agent
//! claimed and by [`crate::sim::MAX_FILE_BYTES`] before it allocates anything.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::pattern::Pattern;

/// The pmem atomic unit the patterns are laid out in (aligned words of a file).
const WORD: usize = 8;

/// A pattern the encoder looks for: at word index `w` of the file, the word that pattern
/// `id` writes at word index `w - shift` (see [`crate::oracle::WordVersion::moved_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Source {
    /// Pattern id.
    pub id: u32,
    /// Words the pattern moved by since it was written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shift: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl Source {
    /// Pattern `id` where it was written.
    pub fn at_home(id: u32) -> Source {
        Source { id, shift: 0 }
    }

    fn word(&self, seed: u64, w: u64) -> [u8; 8] {
        Pattern::new(seed, self.id).word(w.wrapping_sub(self.shift as u64))
    }
}

/// The patterns a read-back looks for: the workload's seed and the pattern sources its
/// files may hold (the agent encodes with them, the host decodes with the same seed).
#[derive(Debug, Clone, Copy)]
pub struct Patterns<'a> {
    /// Workload seed.
    pub seed: u64,
    /// Patterns (with their shifts) the files may hold.
    pub sources: &'a [Source],
}

/// One run of a file's bytes, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "run", rename_all = "snake_case", deny_unknown_fields)]
pub enum Run {
    /// `len` zero bytes.
    Zero {
        /// Length, bytes.
        len: u64,
    },
    /// `len` bytes (whole aligned words) of pattern `id` of the workload's seed, as it
    /// lies `shift` words further on than where it was written.
    Pattern {
        /// Pattern id.
        id: u32,
        /// Words the pattern moved by.
        #[serde(default, skip_serializing_if = "is_zero")]
        shift: i64,
        /// Length, bytes (a multiple of 8, starting on a word boundary).
        len: u64,
    },
    /// Literal bytes, lower-case hex.
    Hex {
        /// Two hex digits per byte.
        hex: String,
    },
}

/// Why a list of runs does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The runs add up to more (or less) than the size the agent reported.
    #[error("the runs hold {got} bytes, the agent reported a size of {size}")]
    Length {
        /// The sum of the runs (saturating), or where the sum first passed the size.
        got: u64,
        /// The reported size.
        size: u64,
    },
    /// The reported size is larger than any file a workload can make.
    #[error("reported size {0} is larger than the largest workload file ({max})", max = crate::sim::MAX_FILE_BYTES)]
    TooLarge(u64),
    /// A literal run is not hex.
    #[error("a literal run is not hex: {0}")]
    Hex(String),
    /// A pattern run that does not start on a word boundary or is not whole words.
    #[error("a pattern run of {len} bytes at offset {at} is not whole aligned words")]
    Unaligned {
        /// File offset of the run.
        at: u64,
        /// Its length.
        len: u64,
    },
}

/// The runs of `data` (a file's bytes from offset 0) for the workload `seed`, recognising
/// whole aligned words of the patterns `sources`. Everything not recognised is kept
/// literally.
pub fn encode(data: &[u8], seed: u64, sources: &[Source]) -> Vec<Run> {
    // Pattern words carry the id's low 16 bits in their top two bytes (zero bytes shown as
    // 0xA5): the candidates of a word are the sources whose tag matches.
    let mut by_tag: HashMap<[u8; 2], Vec<usize>> = HashMap::new();
    for (i, src) in sources.iter().enumerate() {
        let w = Pattern::new(seed, src.id).word(0);
        by_tag.entry([w[6], w[7]]).or_default().push(i);
    }
    let mut runs = Runs::default();
    let mut last: Option<usize> = None;
    let whole = data.len() / WORD * WORD;
    for (index, word) in data[..whole].chunks_exact(WORD).enumerate() {
        let at = index as u64;
        if word.iter().all(|&b| b == 0) {
            runs.zero(WORD as u64);
            continue;
        }
        let matches = |i: &usize| sources[*i].word(seed, at) == word;
        let hit = last.filter(matches).or_else(|| {
            by_tag
                .get(&[word[6], word[7]])
                .and_then(|c| c.iter().copied().find(matches))
        });
        match hit {
            Some(i) => {
                runs.pattern(sources[i], WORD as u64);
                last = Some(i);
            }
            None => runs.literal(word),
        }
    }
    let tail = &data[whole..];
    if tail.iter().all(|&b| b == 0) {
        runs.zero(tail.len() as u64);
    } else {
        runs.literal(tail);
    }
    runs.finish()
}

/// The bytes of `runs` for the workload `seed`, which must add up to exactly `size`.
pub fn decode(runs: &[Run], seed: u64, size: u64) -> Result<Vec<u8>, DecodeError> {
    if size > crate::sim::MAX_FILE_BYTES {
        return Err(DecodeError::TooLarge(size));
    }
    let mut total: u64 = 0;
    for run in runs {
        let len = match run {
            Run::Zero { len } | Run::Pattern { len, .. } => *len,
            Run::Hex { hex } => hex.len() as u64 / 2,
        };
        total = total.saturating_add(len);
        if total > size {
            return Err(DecodeError::Length { got: total, size });
        }
    }
    if total != size {
        return Err(DecodeError::Length { got: total, size });
    }
    let mut out = vec![0u8; size as usize];
    let mut off = 0usize;
    for run in runs {
        match run {
            Run::Zero { len } => off += *len as usize,
            Run::Pattern { id, shift, len } => {
                let end = off + *len as usize;
                if !off.is_multiple_of(WORD) || !end.is_multiple_of(WORD) {
                    return Err(DecodeError::Unaligned {
                        at: off as u64,
                        len: *len,
                    });
                }
                let src = Source {
                    id: *id,
                    shift: *shift,
                };
                for (i, word) in out[off..end].chunks_exact_mut(WORD).enumerate() {
                    word.copy_from_slice(&src.word(seed, (off / WORD + i) as u64));
                }
                off = end;
            }
            Run::Hex { hex } => {
                let end = off + hex.len() / 2;
                hex::decode_to_slice(hex, &mut out[off..end])
                    .map_err(|e| DecodeError::Hex(e.to_string()))?;
                off = end;
            }
        }
    }
    Ok(out)
}

/// Runs under construction: each new piece extends the last run when it is of the same
/// kind (and, for a pattern, the same id).
#[derive(Default)]
struct Runs(Vec<Run>);

impl Runs {
    fn zero(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        match self.0.last_mut() {
            Some(Run::Zero { len }) => *len += n,
            _ => self.0.push(Run::Zero { len: n }),
        }
    }

    fn pattern(&mut self, src: Source, n: u64) {
        match self.0.last_mut() {
            Some(Run::Pattern { id, shift, len }) if *id == src.id && *shift == src.shift => {
                *len += n;
            }
            _ => self.0.push(Run::Pattern {
                id: src.id,
                shift: src.shift,
                len: n,
            }),
        }
    }

    fn literal(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(Run::Hex { hex }) => hex.push_str(&hex::encode(bytes)),
            _ => self.0.push(Run::Hex {
                hex: hex::encode(bytes),
            }),
        }
    }

    fn finish(self) -> Vec<Run> {
        self.0
    }
}

#[cfg(test)]
#[path = "content_tests.rs"]
mod tests;
