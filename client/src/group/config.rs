//! The group layer's keys, taken from the client configuration's layer keys.

use std::time::Duration;

use crate::config::{ClientConfig, ConfigError};

/// `group.protocol`: which rebalance protocol the member speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProtocol {
    /// JoinGroup/SyncGroup with client-side assignors (the default, every broker).
    Classic,
    /// KIP-848 (Kafka 4.0+): ConsumerGroupHeartbeat, assignment computed by the broker.
    Consumer,
}

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
    /// `group.protocol`: `classic` (default) or `consumer` (KIP-848).
    pub protocol: GroupProtocol,
    /// `group.remote.assignor`: the broker-side assignor (`uniform`, `range`) a
    /// `consumer`-protocol member asks for; the broker's default when unset.
    pub remote_assignor: Option<String>,
}

/// Keys Java's `ConsumerConfig` refuses under each protocol (its
/// `checkUnsupportedConfigsPostProcess`): the consumer protocol's timeouts and
/// assignment are the broker's.
const CLASSIC_ONLY: &[&str] = &["partition.assignment.strategy", "heartbeat.interval.ms", "session.timeout.ms"];
const CONSUMER_ONLY: &[&str] = &["group.remote.assignor"];

fn protocol(config: &ClientConfig) -> Result<GroupProtocol, ConfigError> {
    let protocol = match config.layer_value("group.protocol").map(|v| v.trim().to_ascii_lowercase()) {
        None => GroupProtocol::Classic,
        Some(v) if v == "classic" => GroupProtocol::Classic,
        Some(v) if v == "consumer" => GroupProtocol::Consumer,
        Some(v) => return Err(ConfigError::invalid_value("group.protocol", &v, "classic or consumer")),
    };
    let (refused, name) = match protocol {
        GroupProtocol::Classic => (CONSUMER_ONLY, "classic"),
        GroupProtocol::Consumer => (CLASSIC_ONLY, "consumer"),
    };
    if let Some(key) = refused.iter().find(|k| config.layer_value(k).is_some()) {
        return Err(ConfigError::Conflict {
            first: (*key).into(),
            second: "group.protocol".into(),
            reason: format!("{key} cannot be set when group.protocol={name} (as in the Java client)"),
        });
    }
    Ok(protocol)
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
        let protocol = protocol(config)?;
        let remote_assignor = match config.layer_value("group.remote.assignor").map(str::trim) {
            Some("") => return Err(ConfigError::invalid_value("group.remote.assignor", "", "an assignor name")),
            other => other.map(str::to_owned),
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
            protocol,
            remote_assignor,
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

    #[test]
    fn group_protocol_and_the_keys_each_protocol_refuses() {
        assert_eq!(cfg(&[("group.id", "g")]).unwrap().protocol, GroupProtocol::Classic);
        let next = cfg(&[("group.id", "g"), ("group.protocol", "CONSUMER"), ("group.remote.assignor", "uniform")]);
        let next = next.unwrap();
        assert_eq!((next.protocol, next.remote_assignor.as_deref()), (GroupProtocol::Consumer, Some("uniform")));
        assert!(cfg(&[("group.id", "g"), ("group.protocol", "next")])
            .unwrap_err()
            .to_string()
            .contains("group.protocol"));
        for key in CLASSIC_ONLY {
            let e = cfg(&[("group.id", "g"), ("group.protocol", "consumer"), (key, "range")]).unwrap_err();
            assert!(matches!(&e, ConfigError::Conflict { first, .. } if first == key), "{key}: {e}");
        }
        let e = cfg(&[("group.id", "g"), ("group.remote.assignor", "uniform")]).unwrap_err();
        assert!(matches!(&e, ConfigError::Conflict { first, .. } if first == "group.remote.assignor"), "{e}");
    }
}
