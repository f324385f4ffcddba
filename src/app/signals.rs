//! The signals that stop a run gracefully.

use tracing::warn;

/// SIGTERM, SIGINT and SIGHUP ask the run to stop: the page in flight is
/// abandoned, what the outputs confirmed is saved, the status and metrics
/// are written, and the exit code is 1. A second signal ends it at once.
/// A signal the agent was started with ignored (`nohup`) stays ignored.
pub async fn listen_for_signals(tx: tokio::sync::watch::Sender<Option<&'static str>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, raw: i32| {
        if ignored_at_start(raw) {
            None
        } else {
            signal(kind).ok()
        }
    };
    let mut term = listen(SignalKind::terminate(), libc::SIGTERM);
    let mut int = listen(SignalKind::interrupt(), libc::SIGINT);
    let mut hup = listen(SignalKind::hangup(), libc::SIGHUP);
    async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    let mut first = true;
    loop {
        let name = tokio::select! {
            () = next(&mut term) => "SIGTERM",
            () = next(&mut int) => "SIGINT",
            () = next(&mut hup) => "SIGHUP",
        };
        if !first {
            eprintln!("siem-agent: {name} again: stopping at once");
            std::process::exit(1);
        }
        first = false;
        warn!(
            "{name}: stopping; what the outputs confirmed is saved (send it again to stop at once)"
        );
        tx.send_replace(Some(name));
    }
}

/// Whether `sig` was set to be ignored when the process started.
pub fn ignored_at_start(sig: i32) -> bool {
    // SAFETY: reads the current action into a zeroed struct; changes
    // nothing.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

#[cfg(test)]
mod tests {
    use super::ignored_at_start;

    #[test]
    fn a_signal_ignored_when_the_process_started_is_told() {
        // SIGUSR2: no other test of this binary touches it.
        assert!(!ignored_at_start(libc::SIGUSR2));
        // SAFETY: sets this test process's action for SIGUSR2 to ignore.
        unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
        assert!(ignored_at_start(libc::SIGUSR2));
    }
}
