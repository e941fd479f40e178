//! Ctrl-C for every command but `campaign` (whose coordinator handles SIGINT and SIGTERM
//! itself, with an orderly stop): the first SIGINT or SIGTERM kills every QEMU this process
//! started and exits with status 130. QEMU ignores SIGINT (it runs in its own process
//! group), so without this it would outlive an interrupted command until its PDEATHSIG.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic increment: async-signal-safe.
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// Install the handlers and a watcher thread that acts on them.
pub fn install() {
    // SAFETY: `on_signal` only performs an atomic increment, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(100));
        if INTERRUPTS.load(Ordering::SeqCst) > 0 {
            eprintln!("\ninterrupted: killing all VMs");
            crate::host::process::kill_all();
            std::process::exit(130);
        }
    });
}
