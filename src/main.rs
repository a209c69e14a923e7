use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = reprise::cli::Cli::parse();
    match reprise::app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("reprise: {e:#}");
            ExitCode::from(reprise::app::exit_code(&e))
        }
    }
}
