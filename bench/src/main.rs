//! riverlog-bench: the benchmark tool of issue 15. See `benchmarks/README.md`.

mod cli;
mod measure;
mod progress;
mod report;
mod run;
mod target;
mod workloads;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    raise_open_files_limit();
    let report = match run::run(&args).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("riverlog-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report.table());
    match report.write(&args.out) {
        Ok((md, json)) => eprintln!("report: {} and {}", md.display(), json.display()),
        Err(e) => {
            eprintln!("riverlog-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    if report.any_failed() {
        eprintln!("riverlog-bench: some workloads FAILED (see the report)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// W6 holds 10,000 connections to Redis: raise the soft limit on open
/// files to the hard one (servers started here inherit it).
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
