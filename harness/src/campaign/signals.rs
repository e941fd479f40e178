//! Ctrl-C handling for campaigns: the first SIGINT/SIGTERM stops drawing new seeds (in-flight
//! work finishes and results are written), the second kills every QEMU and exits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic increment: async-signal-safe.
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

static GRACEFUL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Let the first interrupt only request a stop (campaigns); otherwise it kills every VM and
/// exits at once.
pub fn set_graceful(graceful: bool) {
    GRACEFUL.store(graceful, Ordering::SeqCst);
}

/// Install the handlers and a watcher thread that, on the second interrupt (or the first,
/// unless [`set_graceful`]), kills every registered QEMU process group and exits with
/// status 130. QEMU ignores SIGINT itself, so without this it would outlive us.
pub fn install() {
    // SAFETY: `on_signal` only performs an atomic increment, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(100));
        match INTERRUPTS.load(Ordering::SeqCst) {
            0 => {}
            1 if GRACEFUL.load(Ordering::SeqCst) => {}
            _ => {
                eprintln!("\ninterrupted: killing all VMs");
                crate::vm::process::kill_all();
                std::process::exit(130);
            }
        }
    });
}

/// Has the user asked to stop (first interrupt)?
pub fn stop_requested() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}
