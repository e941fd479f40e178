//! Data patterns: the bytes a `Pwrite` or `MmapStore` writes, recomputable from
//! (workload seed, pattern id, absolute file offset) alone.
//!
//! Each aligned 8-byte word of a file (the pmem atomic unit) gets one 64-bit value. Its
//! top two bytes carry the pattern id (low 16 bits, shown in hex diffs as the "op tag"), the
//! rest mixes seed, id and word index; a zero byte is replaced by `0xA5` so pattern bytes are
//! never zero and a zeroed range is never mistaken for written data.

/// Bytes written by one data op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// Workload seed.
    pub seed: u64,
    /// Pattern id (see [`crate::Op::pattern_id`]).
    pub id: u32,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Pattern {
    /// A pattern for `seed` and `id`.
    pub fn new(seed: u64, id: u32) -> Self {
        Pattern { seed, id }
    }

    /// The 8 bytes of the aligned word at `word_index` (file offset / 8), little endian.
    pub fn word(&self, word_index: u64) -> [u8; 8] {
        let mix = splitmix64(self.seed ^ splitmix64(u64::from(self.id) ^ (word_index << 20)));
        let tag = u64::from(self.id & 0xffff) << 48;
        let v = tag | (mix & 0x0000_ffff_ffff_ffff);
        let mut b = v.to_le_bytes();
        for x in b.iter_mut() {
            if *x == 0 {
                *x = 0xA5;
            }
        }
        b
    }

    /// The byte at absolute file offset `off`.
    pub fn byte_at(&self, off: u64) -> u8 {
        self.word(off / 8)[(off % 8) as usize]
    }

    /// Fill `buf` with the bytes that belong at file offsets `off..off + buf.len()`.
    pub fn fill(&self, off: u64, buf: &mut [u8]) {
        let mut pos = off;
        let mut i = 0;
        while i < buf.len() {
            let w = self.word(pos / 8);
            let start = (pos % 8) as usize;
            let n = (8 - start).min(buf.len() - i);
            buf[i..i + n].copy_from_slice(&w[start..start + n]);
            i += n;
            pos += n as u64;
        }
    }

    /// The bytes that belong at `off..off + len`.
    pub fn bytes(&self, off: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(off, &mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_matches_byte_at_for_unaligned_ranges() {
        let p = Pattern::new(42, 7);
        let got = p.bytes(13, 50);
        let want: Vec<u8> = (13..63).map(|o| p.byte_at(o)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn no_zero_bytes_and_ids_differ() {
        let a = Pattern::new(1, 1).bytes(0, 4096);
        let b = Pattern::new(1, 2).bytes(0, 4096);
        assert!(a.iter().all(|&x| x != 0));
        assert!(a.chunks(8).zip(b.chunks(8)).all(|(x, y)| x != y));
    }

    #[test]
    fn words_carry_the_pattern_id_in_the_top_bytes() {
        let w = Pattern::new(9, 0x1234).word(3);
        assert_eq!((w[7], w[6]), (0x12, 0x34));
    }
}
