//! The group layer's keys, taken from the client configuration's layer keys.

use std::time::Duration;

use crate::config::{ClientConfig, ConfigError};

/// Validated consumer-group settings.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.id` (required).
    pub group_id: String,
    /// `group.instance.id`: static membership when set.
    pub group_instance_id: Option<String>,
    /// `enable.auto.commit` (default true, as in the Java client).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (default 5000).
    pub auto_commit_interval: Duration,
    /// `session.timeout.ms` (default 45000).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (default 3000).
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (default 300000).
    pub max_poll_interval: Duration,
    /// `partition.assignment.strategy` as given (parsed by the assignor module).
    pub assignment_strategy: Option<String>,
}

fn ms(config: &ClientConfig, key: &str, default: u64, min: u64) -> Result<Duration, ConfigError> {
    let Some(v) = config.layer_value(key) else { return Ok(Duration::from_millis(default)) };
    match v.trim().parse::<u64>() {
        Ok(n) if n >= min && n <= i32::MAX as u64 => Ok(Duration::from_millis(n)),
        _ => Err(ConfigError::invalid_value(
            key,
            v,
            format!("an integer number of milliseconds from {min} to {}", i32::MAX),
        )),
    }
}

impl GroupConfig {
    /// Reads and validates the group keys; `group.id` is required.
    pub fn from_client(config: &ClientConfig) -> Result<GroupConfig, ConfigError> {
        let group_id = match config.layer_value("group.id").map(str::trim) {
            Some(g) if !g.is_empty() => g.to_owned(),
            Some(g) => return Err(ConfigError::invalid_value("group.id", g, "a non-empty group name")),
            None => return Err(ConfigError::Missing { key: "group.id".into() }),
        };
        let group_instance_id = match config.layer_value("group.instance.id").map(str::trim) {
            Some("") => {
                return Err(ConfigError::invalid_value("group.instance.id", "", "a non-empty id, or no key at all"))
            }
            other => other.map(str::to_owned),
        };
        let enable_auto_commit = match config.layer_value("enable.auto.commit").map(|v| v.trim().to_ascii_lowercase()) {
            None => true,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(v) => return Err(ConfigError::invalid_value("enable.auto.commit", &v, "true or false")),
        };
        let session_timeout = ms(config, "session.timeout.ms", 45_000, 1)?;
        let heartbeat_interval = ms(config, "heartbeat.interval.ms", 3_000, 1)?;
        let max_poll_interval = ms(config, "max.poll.interval.ms", 300_000, 1)?;
        if heartbeat_interval >= session_timeout {
            return Err(ConfigError::Conflict {
                first: "heartbeat.interval.ms".into(),
                second: "session.timeout.ms".into(),
                reason: "the heartbeat interval must be lower than the session timeout".into(),
            });
        }
        Ok(GroupConfig {
            group_id,
            group_instance_id,
            enable_auto_commit,
            auto_commit_interval: ms(config, "auto.commit.interval.ms", 5_000, 0)?,
            session_timeout,
            heartbeat_interval,
            max_poll_interval,
            assignment_strategy: config.layer_value("partition.assignment.strategy").map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<GroupConfig, ConfigError> {
        let mut all = vec![("bootstrap.servers", "localhost:9092")];
        all.extend_from_slice(pairs);
        GroupConfig::from_client(&ClientConfig::from_pairs(all).unwrap())
    }

    #[test]
    fn defaults_and_validation() {
        assert!(matches!(cfg(&[]), Err(ConfigError::Missing { key }) if key == "group.id"));
        let g = cfg(&[("group.id", "g")]).unwrap();
        assert!(g.enable_auto_commit);
        assert_eq!(g.session_timeout, Duration::from_secs(45));
        assert!(cfg(&[("group.id", "g"), ("enable.auto.commit", "yes")])
            .unwrap_err()
            .to_string()
            .contains("enable.auto.commit"));
        assert!(matches!(
            cfg(&[("group.id", "g"), ("session.timeout.ms", "1000"), ("heartbeat.interval.ms", "1000")]),
            Err(ConfigError::Conflict { .. })
        ));
        assert!(cfg(&[("group.id", "g"), ("max.poll.interval.ms", "-5")]).is_err());
    }
}
