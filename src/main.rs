use std::process::ExitCode;

use clap::Parser;

// mimalloc: the import loop frees on one thread what the readers allocate on
// another, which glibc's malloc handles slowly; replay allocates per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option: how long freed memory waits before it
/// is returned to the OS (-1: never). Its default (10 ms) makes the import
/// loop hand pages back and fault them in again, zeroing huge pages each
/// time. A run's memory rises and falls with the requests in flight many
/// times a second; even a 1 s delay had it zeroing 2 MiB huge pages again
/// and again (8% of the generator's CPU at 40,000 requests/s, and stalls of
/// 200 ms in the latency tail), so commands that generate load keep what
/// they have: their peak is what they need anyway.
const MI_OPTION_PURGE_DELAY: i32 = 15;

fn tune_allocator(command: &reprise::cli::Command) {
    use reprise::cli::Command;
    let delay = match command {
        Command::Replay(_) | Command::Demo(_) | Command::Drill(_) | Command::DemoTarget(_) => -1,
        _ => 1000,
    };
    // SAFETY: plain calls into mimalloc's option table, before any thread
    // is started. The option is checked to hold its documented default
    // first, so a different option layout is left alone.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == 10 {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay);
        }
    }
}

fn main() -> ExitCode {
    let cli = reprise::cli::Cli::parse();
    tune_allocator(&cli.command);
    // The only signal handler: the first Ctrl-C stops a run gracefully (its
    // results are still written); a second one, or one while nothing can
    // stop gracefully, exits at once.
    let interrupts = reprise::replay::Interrupts::default();
    let handler = interrupts.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        if handler.press() {
            std::process::exit(i32::from(reprise::app::exit::INTERRUPTED));
        }
        eprintln!(
            "\nreprise: stopping; the results gathered so far will be written (Ctrl-C again to quit at once)"
        );
    }) {
        eprintln!("reprise: warning: Ctrl-C will not stop runs gracefully: {e}");
    }
    match reprise::app::run(cli, &interrupts) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("reprise: {e:#}");
            ExitCode::from(reprise::app::exit_code(&e))
        }
    }
}
