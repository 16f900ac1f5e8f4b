//! Log output on stderr: kcat's `-d CONTEXTS` (librdkafka's `debug` property) and
//! `RUST_LOG`, through `tracing-subscriber`.
//!
//! | `-d` context (librdkafka) | ferrokafka targets, at debug level |
//! |---|---|
//! | `broker`, `generic` | connections, bootstrap, reconnects |
//! | `protocol` | every request and answer (trace level) |
//! | `metadata`, `topic` | metadata refreshes, leaders |
//! | `consumer`, `fetch` | fetch loops, positions, range reads |
//! | `cgrp`, `assignor` | consumer groups |
//! | `msg`, `eos`, `queue` | producer batches, idempotence |
//! | `security` | TLS and SASL |
//! | `admin` | admin calls |
//! | `all` | everything of ferrokafka's |
//!
//! `RUST_LOG` (the `tracing` syntax: `ferrokafka_client=debug,ferrokafka_client::conn=trace`)
//! is added to whatever `-d` selects; `-v` shows warnings and info without `-d`.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};

use crate::args::UsageError;

/// The targets one librdkafka debug context turns on.
fn context(name: &str) -> Option<&'static [(&'static str, LevelFilter)]> {
    const D: LevelFilter = LevelFilter::DEBUG;
    Some(match name {
        "broker" | "generic" => {
            &[("ferrokafka_client::cluster", D), ("ferrokafka_client::conn", D), ("ferrokafka_client::admin", D)]
        }
        "protocol" => &[("ferrokafka_client::conn", LevelFilter::TRACE), ("ferrokafka_protocol", LevelFilter::TRACE)],
        "metadata" | "topic" => &[("ferrokafka_client::cluster", D), ("ferrokafka_client::metadata", D)],
        "consumer" | "fetch" => &[
            ("ferrokafka_client::consumer", D),
            ("ferrokafka_client::range", D),
            ("ferrokafka_client::fetch", D),
            ("ferrokafka_streaming", D),
        ],
        "cgrp" | "assignor" => &[("ferrokafka_client::group", D)],
        "msg" | "eos" | "queue" => &[("ferrokafka_client::producer", D)],
        "security" => &[("ferrokafka_client::sasl", D), ("ferrokafka_tls", D), ("ferrokafka_client::conn", D)],
        "admin" => &[("ferrokafka_client::admin", D), ("ferrokafka_client::group::admin", D)],
        "all" => &[
            ("ferrokafka_client", LevelFilter::TRACE),
            ("ferrokafka_protocol", LevelFilter::TRACE),
            ("ferrokafka_tls", LevelFilter::TRACE),
            ("ferrokafka_streaming", LevelFilter::TRACE),
        ],
        // librdkafka contexts with no counterpart here select nothing.
        "feature" | "interceptor" | "plugin" | "mock" | "conf" | "telemetry" => &[],
        _ => return None,
    })
}

/// The filter for `-d CONTEXTS`, `-v` and `RUST_LOG`; `None` when nothing asks for logs.
pub fn filter(debug: Option<&str>, verbose: u8, rust_log: Option<&str>) -> Result<Option<Targets>, UsageError> {
    let mut targets = Targets::new();
    let mut any = false;
    if verbose > 0 {
        let level = if verbose == 1 { LevelFilter::INFO } else { LevelFilter::DEBUG };
        targets = targets.with_default(level);
        any = true;
    } else {
        targets = targets.with_default(LevelFilter::WARN);
    }
    for name in debug.into_iter().flat_map(|d| d.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        let selected = context(name).ok_or_else(|| {
            UsageError(format!("-d {name}: unknown debug context (broker, protocol, consumer, cgrp, topic, metadata, fetch, msg, security, eos, admin, all)"))
        })?;
        targets = targets.with_targets(selected.iter().copied());
        any = true;
    }
    if let Some(env) = rust_log.filter(|v| !v.trim().is_empty()) {
        let extra = Targets::from_str(env).map_err(|e| UsageError(format!("RUST_LOG={env}: {e}")))?;
        targets = targets.with_targets(extra);
        any = true;
    }
    Ok(any.then_some(targets))
}

/// Installs the stderr subscriber when logs were asked for.
pub fn init(debug: Option<&str>, verbose: u8) -> Result<(), UsageError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let rust_log = std::env::var("RUST_LOG").ok();
    let Some(targets) = filter(debug, verbose, rust_log.as_deref())? else { return Ok(()) };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).with_target(true);
    let _ = tracing_subscriber::registry().with(fmt).with(targets).try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn contexts_select_their_targets() {
        let t = filter(Some("broker,cgrp"), 0, None).unwrap().unwrap();
        assert!(t.would_enable("ferrokafka_client::conn::task", &Level::DEBUG));
        assert!(t.would_enable("ferrokafka_client::group::join", &Level::DEBUG));
        assert!(!t.would_enable("ferrokafka_client::producer::sender", &Level::DEBUG));
        assert!(t.would_enable("ferrokafka_client::producer::sender", &Level::WARN), "warnings always show");
        let all = filter(Some("all"), 0, None).unwrap().unwrap();
        assert!(all.would_enable("ferrokafka_client::conn::task", &Level::TRACE));
    }

    #[test]
    fn no_request_no_subscriber_and_bad_names_refused() {
        assert!(filter(None, 0, None).unwrap().is_none());
        assert!(filter(Some("brokr"), 0, None).is_err());
        let env = filter(None, 0, Some("ferrokafka_client::cluster=trace")).unwrap().unwrap();
        assert!(env.would_enable("ferrokafka_client::cluster", &Level::TRACE));
        assert!(filter(Some("feature"), 0, None).unwrap().is_some(), "known contexts with no targets are accepted");
        let v = filter(None, 1, None).unwrap().unwrap();
        assert!(v.would_enable("ferrokafka_client::cluster", &Level::INFO));
        assert!(!v.would_enable("ferrokafka_client::cluster", &Level::DEBUG));
    }
}
