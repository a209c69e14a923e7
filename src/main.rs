use std::process::ExitCode;

use clap::Parser;

// mimalloc: the import loop frees on one thread what the readers allocate on
// another, which glibc's malloc handles slowly; replay allocates per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option: how long freed memory waits before it
/// is returned to the OS (-1: never). A run's memory rises and falls with
/// the requests in flight many times a second; with a 1 s delay it zeroed
/// 2 MiB huge pages again and again (8% of the generator's CPU at 40,000
/// requests/s, and stalls of 200 ms in the latency tail). The import's
/// batches come and go the same way: on the 1 GB log it took 1,200–1,600
/// page faults against about 390 without purging. So the commands that
/// generate load, and the import, keep what they have: their peak is what
/// they need anyway (the import's is about 15 MB higher). The other
/// commands keep mimalloc's default, a 1 s delay.
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// The option's default in mimalloc v3 (`options.c`; the header's comment
/// still says 10, v2's default, and checking for 10 had this tuning never
/// apply).
const MI_PURGE_DELAY_DEFAULT: std::ffi::c_long = 1000;

fn tune_allocator(command: &reprise::cli::Command) {
    use reprise::cli::Command;
    let keeps_memory = matches!(
        command,
        Command::Replay(_)
            | Command::Demo(_)
            | Command::Drill(_)
            | Command::DemoTarget(_)
            | Command::Import(_)
    );
    if !keeps_memory {
        return;
    }
    // SAFETY: plain calls into mimalloc's option table, before any thread
    // is started. The option is checked to hold its documented default
    // first, so a value set from outside (or a different option layout) is
    // left alone.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_PURGE_DELAY_DEFAULT {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        }
    }
}

/// Whether SIGHUP was ignored when reprise started (`nohup`).
fn hangup_ignored() -> bool {
    // SAFETY: reads the current disposition only (a null new action).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

fn main() -> ExitCode {
    let cli = reprise::cli::Cli::parse();
    tune_allocator(&cli.command);
    // The only signal handler (SIGINT, and SIGTERM and SIGHUP, as
    // orchestrators stop jobs): the first stops a run gracefully (its
    // results are still written); a second one, or one while nothing can
    // stop gracefully, exits at once.
    let interrupts = reprise::replay::Interrupts::default();
    let handler = interrupts.clone();
    let hangup_ignored = hangup_ignored();
    if let Err(e) = ctrlc::set_handler(move || {
        if handler.press() {
            std::process::exit(i32::from(reprise::app::exit::INTERRUPTED));
        }
        reprise::say!(
            "\nreprise: stopping; the results gathered so far will be written (Ctrl-C again to quit at once)"
        );
    }) {
        reprise::say!("reprise: warning: Ctrl-C will not stop runs gracefully: {e}");
    }
    if hangup_ignored {
        // Started under nohup: a closed terminal must not stop a soak run.
        // SAFETY: setting a signal's disposition back to SIG_IGN, as the
        // parent had it; no handler runs in between that could mind.
        unsafe {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        }
    }
    match reprise::app::run(cli, &interrupts) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            reprise::say!("reprise: {e:#}");
            ExitCode::from(reprise::app::exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tuning takes effect (it silently did not while it looked for
    /// v2's default).
    #[test]
    fn import_never_purges() {
        // SAFETY (this and the calls below): reads and writes of mimalloc's
        // option table; other test threads may allocate meanwhile, which
        // only read the option.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(
                before, MI_PURGE_DELAY_DEFAULT,
                "mimalloc's default purge delay changed: the tuning would not apply"
            );
        }
        let cli = reprise::cli::Cli::parse_from(["reprise", "import", "in.log", "-o", "m.json"]);
        tune_allocator(&cli.command);
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if before == MI_PURGE_DELAY_DEFAULT {
            assert_eq!(after, -1);
        } else {
            assert_eq!(after, before, "a value set from outside is left alone");
        }
    }
}
