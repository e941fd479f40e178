//! Basic blocks of one function's machine code, found by disassembling it (iced-x86): a
//! block starts at the function's entry, at every target of a direct jump inside the
//! function, and after every jump, return or trap. Calls do not end a block. Blocks made
//! only of padding (`nop`, `int3`) are not counted. Targets that are not the start of an
//! instruction of the linear disassembly (an unrelocated jump of a module, data in the
//! text) are ignored. Pure.

use iced_x86::{Code, Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic};

/// Bytes of one function disassembled at most.
pub const MAX_FUNCTION_BYTES: usize = 64 << 10;

/// The start offsets of the basic blocks of the code `bytes` loaded at `addr`, sorted.
pub fn block_starts(bytes: &[u8], addr: u64) -> Vec<u32> {
    let bytes = &bytes[..bytes.len().min(MAX_FUNCTION_BYTES)];
    let mut decoder = Decoder::with_ip(64, bytes, addr, DecoderOptions::NONE);
    let mut insns: Vec<(u32, bool)> = Vec::new(); // (offset, padding)
    let mut leaders = vec![0u32];
    let mut insn = Instruction::default();
    let end = addr.saturating_add(bytes.len() as u64);
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        let off = insn.ip().wrapping_sub(addr) as u32;
        if insn.code() == Code::INVALID {
            // Data or a cut instruction: what follows is not code we can place.
            break;
        }
        let padding = matches!(insn.mnemonic(), Mnemonic::Nop | Mnemonic::Int3);
        insns.push((off, padding));
        let next = off + insn.len() as u32;
        match insn.flow_control() {
            FlowControl::Next | FlowControl::Call | FlowControl::IndirectCall => {}
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch => {
                let target = insn.near_branch_target();
                if (addr..end).contains(&target) {
                    leaders.push(target.wrapping_sub(addr) as u32);
                }
                leaders.push(next);
            }
            FlowControl::IndirectBranch
            | FlowControl::Return
            | FlowControl::Interrupt
            | FlowControl::XbeginXabortXend
            | FlowControl::Exception => leaders.push(next),
        }
    }
    let starts: std::collections::BTreeSet<u32> = insns.iter().map(|i| i.0).collect();
    leaders.sort_unstable();
    leaders.dedup();
    leaders.retain(|l| starts.contains(l));
    // Drop blocks that hold nothing but padding (one pass: both lists are sorted).
    let mut out = Vec::with_capacity(leaders.len());
    let mut j = 0;
    for (i, &l) in leaders.iter().enumerate() {
        let stop = leaders.get(i + 1).copied().unwrap_or(u32::MAX);
        while j < insns.len() && insns[j].0 < l {
            j += 1;
        }
        let mut real = false;
        while j < insns.len() && insns[j].0 < stop {
            real |= !insns[j].1;
            j += 1;
        }
        if real {
            out.push(l);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_at_jumps_targets_and_returns() {
        // 0: endbr64            (4)
        // 4: test edi, edi      (2)
        // 6: je +3 -> 0xb       (2)
        // 8: mov eax, 1 ... no: xor eax,eax (2) ; 10: ret (1)
        // 0xb: mov eax, 1       (5)
        // 0x10: ret             (1)
        // 0x11: int3            (1)  padding
        let code = [
            0xf3, 0x0f, 0x1e, 0xfa, // endbr64
            0x85, 0xff, // test edi, edi
            0x74, 0x03, // je 0xb
            0x31, 0xc0, // xor eax, eax
            0xc3, // ret
            0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1
            0xc3, // ret
            0xcc, // int3
        ];

        let starts = block_starts(&code, 0xffff_ffff_8100_0000);

        assert_eq!(starts, [0, 8, 0xb]);
    }

    #[test]
    fn calls_do_not_split_and_outside_targets_are_ignored() {
        let code = [
            0xe8, 0x00, 0x00, 0x00, 0x00, // call next (+0)
            0xe9, 0x00, 0x10, 0x00, 0x00, // jmp far outside
            0x90, // nop (padding after the jump)
        ];

        assert_eq!(block_starts(&code, 0x1000), [0]);
    }

    #[test]
    fn a_jump_into_the_middle_of_an_instruction_is_no_block() {
        let code = [
            0x75, 0x01, // jne +1 -> offset 3 (inside the mov)
            0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1
            0xc3,
        ];

        assert_eq!(block_starts(&code, 0x1000), [0, 2]);
    }

    #[test]
    fn garbage_never_panics() {
        let junk: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let _ = block_starts(&junk, u64::MAX - 10);
        assert!(block_starts(&[], 0).is_empty());
    }
}
