//! The `riverlog` binary: parses arguments and starts the library.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use riverlog::cli;
use riverlog::config::{Config, ConfigArgs};
use riverlog::server::Application;
use riverlog::telemetry;

/// `0.1.0 (commit 1a2b3c4)`: the commit comes from build.rs (`unknown`
/// when built outside git).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("RIVERLOG_GIT_COMMIT"),
    ")"
);

/// riverlog: an event log service for CloudEvents over gRPC.
#[derive(Parser)]
#[command(name = "riverlog", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ConfigArgs),
    /// Print the effective configuration (defaults, file, environment and
    /// flags resolved; the database password hidden) and exit.
    Config {
        #[command(flatten)]
        args: ConfigArgs,
        /// Print the settings reference as a Markdown table instead.
        #[arg(long)]
        reference: bool,
    },
    /// Read a token on stdin and print the SHA-256 that `[[auth.tokens]]`
    /// wants for it.
    HashToken,
    /// Publish events to a stream (from --data, or stdin's lines).
    Publish(cli::PublishArgs),
    /// Follow streams live.
    Tail(cli::TailArgs),
    /// List (the default), describe, create, delete and trim streams.
    Streams(cli::StreamsArgs),
    /// List a stream's groups (the default), describe, create, seek,
    /// redrive and delete consumer groups; show pending.
    Groups(cli::GroupsArgs),
    /// Print a shell completion script: `source <(riverlog completion bash)`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one per command into a folder.
    Man {
        /// Write riverlog.1, riverlog-streams.1, ... here instead.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Config {
            reference: true, ..
        } => {
            print!("{}", Config::reference_markdown());
            return ExitCode::SUCCESS;
        }
        Command::Config { args, .. } => {
            return match Config::load(&args) {
                Ok(config) => {
                    print!("{}", config.to_toml_annotated());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("riverlog: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::HashToken => return hash_token(),
        Command::Publish(args) => return client(cli::run(args.connection.clone(), args.run())),
        Command::Tail(args) => return client(cli::run(args.connection.clone(), args.run())),
        Command::Streams(args) => return client(cli::run(args.connection.clone(), args.run())),
        Command::Groups(args) => return client(cli::run(args.connection.clone(), args.run())),
        Command::Completion { shell } => {
            return match cli::completion(shell, &mut Cli::command(), &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("riverlog: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Man { out_dir } => {
            return match cli::man(Cli::command(), out_dir.as_deref(), &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("riverlog: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    let config = match Config::load(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("riverlog: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("riverlog: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config))
}

/// Runs a client command on a small runtime of its own.
fn client(command: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(command),
        Err(e) => {
            eprintln!("riverlog: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn hash_token() -> ExitCode {
    let mut token = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut token) {
        eprintln!("riverlog: cannot read the token from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let token = token.trim_end_matches(['\n', '\r']);
    if token.is_empty() {
        eprintln!("riverlog: no token on stdin");
        return ExitCode::FAILURE;
    }
    println!("{}", riverlog::auth::token_digest(token));
    ExitCode::SUCCESS
}

async fn serve(config: Config) -> ExitCode {
    let telemetry = match telemetry::init(
        config.log_format,
        config.log_level.as_deref(),
        config.otlp_endpoint.as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("riverlog: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = run(config).await;
    telemetry.shutdown();
    code
}

async fn run(config: Config) -> ExitCode {
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("riverlog: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("riverlog: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
