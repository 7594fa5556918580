//! Where the log goes: standard error, filtered by `SALON_LOG` (`tracing`'s filter
//! syntax, e.g. `info` or `salon_proto=debug`), warnings only when it is unset. The
//! protocol and the node log what happens, never names, titles, chat, secrets or
//! addresses (see `salon_proto`'s endpoint log), so a log can go into a bug report.

use tracing_subscriber::EnvFilter;

/// The environment variable that sets the log filter.
pub const LOG_ENV: &str = "SALON_LOG";

/// Sends the log to standard error, once per process (later calls change nothing).
/// A malformed filter falls back to warnings and says so.
pub fn init() {
    let (filter, bad) = match std::env::var(LOG_ENV) {
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new("warn"), Some(format!("{spec:?}: {e}"))),
        },
        Err(_) => (EnvFilter::new("warn"), None),
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init()
        .is_ok();
    if installed && let Some(why) = bad {
        tracing::warn!("{LOG_ENV} ignored, logging warnings only: {why}");
    }
}
