//! `ferrokafka`: a kcat-like command-line Kafka client, without librdkafka.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error, 3 configuration error.

#![allow(missing_docs)] // a binary: its documentation is the usage text

mod args;
mod error;
mod format;
mod group;
mod input;
mod log;
mod run;
mod stream;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "stream") {
        if argv.iter().any(|a| a == "-h" || a == "--help") {
            println!("{}", stream::USAGE);
            return ExitCode::SUCCESS;
        }
        return stream::main(&argv[1..]);
    }
    // kcat's getopt forms (bundled flags, attached values) become one token per option.
    let argv = match args::getopt(&argv) {
        Ok(a) => a,
        Err(args::UsageError(msg)) => {
            eprintln!("ferrokafka: {msg}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    if argv.iter().any(|a| a == "-h" || a == "--help") || argv.is_empty() {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    if argv.iter().any(|a| a == "-V" || a == "--version") {
        println!("ferrokafka {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let args = match args::parse(&argv) {
        Ok(a) => a,
        Err(args::UsageError(msg)) => {
            eprintln!("ferrokafka: {msg}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    if let Err(args::UsageError(msg)) = log::init(args.debug.as_deref(), args.verbose) {
        eprintln!("ferrokafka: {msg}");
        return ExitCode::from(2);
    }
    let runtime = match crate::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(run::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            match code {
                3 => eprintln!("ferrokafka: configuration error: {e}"),
                _ => eprintln!("ferrokafka: {e}"),
            }
            ExitCode::from(code)
        }
    }
}

/// The runtime every mode runs on (two workers); exit code 1 if it cannot start.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| {
        eprintln!("ferrokafka: cannot start the runtime: {e}");
        ExitCode::from(1)
    })
}
