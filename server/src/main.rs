//! The `switchyard` binary: parse the command line, run the command, and
//! turn any failure into one `error: …` line on stderr and a non-zero exit.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use server::auth::users::{DEFAULT_ADMIN, Password, UserName};
use server::config::cli::{Cli, Command};
use server::config::layer::Layer;
use server::config::{Scope, Settings};
use server::demo::Demo;
use server::demo::fleet::FleetDemo;
use server::demo::ratelimits::RateLimitDemo;
use server::http::error::one_line;
use server::startup::Application;
use server::startup::commands::{enqueue, users};
use server::startup::telemetry;

/// How long demo workers may take to finish their jobs at shutdown.
const DEMO_GRACE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    return_large_blocks();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", report(&err));
            ExitCode::FAILURE
        }
    }
}

/// Makes glibc's allocator give large blocks back to the system when they
/// are freed. By default it raises its mmap threshold after the first
/// large free, so each password hash's 19 MiB then comes from a thread's
/// arena and stays there: 5 sign-ins in a row grew the server by 120 MiB,
/// a flood by 300. With the threshold fixed at its default of 128 KiB a
/// flood of 200 sign-ins grows it by the two hashes running at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_blocks() {
    // SAFETY: mallopt only sets an allocator parameter, under glibc's own
    // lock, so calling it while other threads allocate is sound.
    let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    if set != 1 {
        eprintln!(
            "warning: cannot fix the allocator's mmap threshold; memory may stay high after sign-ins"
        );
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_blocks() {}

/// The error and its causes on one line, like `{err:#}`, but without saying
/// the same thing twice: many library errors quote their source in their
/// own message, so a cause already quoted is skipped, and a cause that
/// quotes everything said so far replaces it.
fn report(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = one_line(&cause.to_string());
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() && text.contains(&line) {
            line = text;
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // The account commands use only the SQL database, so PostgreSQL needs
    // no Redis next to it there.
    let scope = match &cli.command {
        Some(Command::User(_) | Command::Token(_)) => Scope::SqlOnly,
        _ => Scope::Everything,
    };
    let settings = Settings::load_for(&cli.global, scope)?;
    match cli.command.unwrap_or(Command::Demo) {
        Command::Serve => serve(settings, false).await,
        Command::Demo => serve(settings, true).await,
        Command::Enqueue(args) => {
            one_shot_telemetry(&cli.global, &settings)?;
            let id = enqueue::run(&settings, &args).await?;
            println!("{id}");
            Ok(())
        }
        Command::User(args) => {
            one_shot_telemetry(&cli.global, &settings)?;
            let stdin = std::io::stdin().lock();
            let out = users::run(&settings, &args, stdin).await?;
            print!("{out}");
            Ok(())
        }
        Command::Token(args) => {
            one_shot_telemetry(&cli.global, &settings)?;
            let out = users::run_token(&settings, &args).await?;
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            Ok(())
        }
    }
}

/// A one-shot command logs only warnings, unless a filter was asked for.
fn one_shot_telemetry(global: &Layer, settings: &Settings) -> anyhow::Result<()> {
    let filter = if global.log.is_some() {
        settings.log.as_str()
    } else {
        "warn"
    };
    Ok(telemetry::init(filter)?)
}

/// On a demo database without users, creates `admin` with a generated
/// password, to print once: the demo is for looking around at once, and a
/// fixed password would be the same on every machine that ran it.
async fn demo_admin(app: &Application) -> anyhow::Result<Option<Password>> {
    let store = &app.state().users;
    if !store.is_empty().await? {
        return Ok(None);
    }
    let name = UserName::new(DEFAULT_ADMIN)?;
    let password = Password::generate();
    let created = store.add_first_admin(&name, &password).await?;
    Ok(created.then_some(password))
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    telemetry::init(&settings.log)?;
    tracing::debug!(?settings, "starting");
    let app = Application::build(&settings).await?;
    let credentials = if demo {
        demo_admin(&app)
            .await
            .context("cannot create the demo's admin")?
    } else {
        None
    };
    let demo = if demo {
        let queues = Demo::start(&app.state().queues)
            .await
            .context("cannot start the demo")?;
        let instances = FleetDemo::start(
            &app.state().channels,
            &app.state().instances,
            &app.state().caches,
        )
        .await
        .context("cannot start the demo instances")?;
        let clients = RateLimitDemo::start(&app.state().ratelimits)
            .await
            .context("cannot start the demo's rate-limited clients")?;
        Some((queues, instances, clients))
    } else {
        None
    };
    let backend = match &settings.redis_url {
        Some(url) => format!("Redis {url}, prefix {}", settings.redis_prefix),
        None => format!("embedded, {}", settings.database_url),
    };
    let mut banner = format!(
        "Switchyard {} on {} ({backend})\n",
        if demo.is_some() {
            "demo serving"
        } else {
            "serving"
        },
        app.url()
    );
    if let Some(password) = credentials {
        banner.push_str(&format!(
            "Sign in as {DEFAULT_ADMIN} with password {} (shown once)\n",
            password.expose()
        ));
    }
    // Signal handlers go in before the banner: a harness that reads the
    // banner and sends SIGTERM straight away must get a clean shutdown, not
    // the default action of a handler not yet installed.
    let stopped = shutdown_signal();
    // One write, so a reader that takes the first line and closes the
    // pipe (scripts, tests) still gets both lines and no broken pipe.
    print!("{banner}");
    app.run_until_stopped(stopped)
        .await
        .context("server failed")?;
    if let Some((queues, instances, clients)) = demo {
        clients.stop();
        instances.stop().await;
        queues.stop(DEMO_GRACE).await;
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (what `docker stop` and test harnesses
/// send), so in-flight requests and demo jobs can finish. The handlers are
/// registered when this is called, not when the future is first polled (the
/// server polls it on a task of its own, after it may already answer).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    #[cfg(not(unix))]
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = signals;
            let interrupted = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let terminated = async {
                match terminate.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = interrupted => {}
                _ = terminated => {}
            }
        }
        #[cfg(not(unix))]
        if ctrl_c.await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    }
}
