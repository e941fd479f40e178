//! Keeping the console of the booted state a campaign's VMs restore from in its run directory.

use super::CampaignEnv;

/// Copy the console of the booted state the workload VMs restore from into
/// `boot/booted-<key>[-k<i>].console.log` of the run directory, so that the reports' scan of
/// kernel complaints ([`crate::runs::kernel_log`]) sees what the kernel said while booting
/// (a restored VM's own console starts after the boot). Best effort: a copy that fails is
/// only logged.
pub(super) fn keep(dir: &std::path::Path, env: &CampaignEnv) {
    let Some(state) = env.start.state() else {
        return;
    };
    let Some(from) = state.state.parent().map(|d| d.join("booted.console.log")) else {
        return;
    };
    let suffix = env
        .kernel
        .as_ref()
        .map_or_else(String::new, |k| format!("-k{}", k.index));
    let to_dir = dir.join(crate::runs::kernel_log::BOOT_DIR);
    let to = to_dir.join(format!("booted-{}{suffix}.console.log", state.key));
    let copied = std::fs::create_dir_all(&to_dir).and_then(|()| std::fs::copy(&from, &to));
    if let Err(e) = copied {
        tracing::warn!("keeping the boot console {}: {e}", from.display());
    }
}
