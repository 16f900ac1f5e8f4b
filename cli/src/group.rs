//! `-G` balanced consume and the `group` subcommands.

use std::io::Write;
use std::time::Duration;

use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::group::admin::{describe_group, group_lag, list_groups, reset_offsets};
use ferrokafka_client::group::GroupConsumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::ClientError;

use crate::error::{CliError, Result};

use crate::args::{Args, GroupCmd};
use crate::error::io_err;
use crate::format::Output;

/// `-G GROUP topic…`: consume as a member of GROUP until `-c` records (or forever).
pub async fn consume(config: ClientConfig, args: &Args) -> Result<()> {
    let mut consumer = GroupConsumer::new(config).await?;
    consumer.subscribe(args.topics.iter().cloned());
    let output =
        Output::new(args.format.as_deref(), args.json, args.key_delimiter.as_deref(), args.delimiter.as_deref());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut count = 0u64;
    let mut assigned = Vec::new();
    'outer: loop {
        let records = consumer.poll(Duration::from_millis(500)).await?;
        if consumer.assignment() != assigned {
            assigned = consumer.assignment();
            if !args.quiet {
                let list: Vec<String> = assigned.iter().map(TopicPartition::to_string).collect();
                eprintln!("% group {}: assigned {}", args.group.as_deref().unwrap_or(""), list.join(", "));
            }
        }
        for r in records.views() {
            output.write_consumed(&mut out, &r?).map_err(io_err)?;
            if args.unbuffered {
                out.flush().map_err(io_err)?;
            }
            count += 1;
            if args.count.is_some_and(|c| count >= c) {
                break 'outer;
            }
        }
        out.flush().map_err(io_err)?;
    }
    out.flush().map_err(io_err)?;
    consumer.commit_sync(None).await?;
    Ok(consumer.close().await?)
}

/// The `group` subcommands.
pub async fn admin(cluster: &Cluster, args: &Args) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let Some(cmd) = &args.group_cmd else { return Err(CliError::Usage("no group subcommand".into())) };
    match cmd {
        GroupCmd::List => {
            let groups = list_groups(cluster).await?;
            if args.json {
                let v: Vec<_> = groups.iter().map(|g| serde_json::json!({"group": g.group_id, "protocol_type": g.protocol_type, "state": g.state})).collect();
                writeln!(out, "{}", serde_json::Value::Array(v)).map_err(io_err)?;
            } else {
                for g in groups {
                    writeln!(out, "{}\t{}\t{}", g.group_id, g.protocol_type, g.state.unwrap_or_default())
                        .map_err(io_err)?;
                }
            }
        }
        GroupCmd::Describe(group) => {
            let d = describe_group(cluster, group).await?;
            if args.json {
                let members: Vec<_> = d
                    .members
                    .iter()
                    .map(|m| serde_json::json!({
                        "member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id, "host": m.client_host,
                        "assignment": m.assignment.iter().map(|tp| serde_json::json!({"topic": &*tp.topic, "partition": tp.partition})).collect::<Vec<_>>(),
                    }))
                    .collect();
                let v = serde_json::json!({"group": d.group_id, "state": d.state, "protocol": d.protocol, "members": members});
                writeln!(out, "{v}").map_err(io_err)?;
            } else {
                writeln!(
                    out,
                    "group {} state {} protocol {} ({} members)",
                    d.group_id,
                    d.state,
                    d.protocol,
                    d.members.len()
                )
                .map_err(io_err)?;
                for m in d.members {
                    let parts: Vec<String> = m.assignment.iter().map(TopicPartition::to_string).collect();
                    writeln!(
                        out,
                        "  {} client {} host {}: {}",
                        m.member_id,
                        m.client_id,
                        m.client_host,
                        parts.join(", ")
                    )
                    .map_err(io_err)?;
                }
            }
        }
        GroupCmd::Lag(group) => {
            let lags = group_lag(cluster, group).await?;
            if args.json {
                let v: Vec<_> = lags
                    .iter()
                    .map(|l| {
                        serde_json::json!({"topic": &*l.topic_partition.topic, "partition": l.topic_partition.partition,
                        "committed": l.committed, "end": l.end_offset, "lag": l.lag})
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(v)).map_err(io_err)?;
            } else {
                writeln!(out, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG").map_err(io_err)?;
                for l in lags {
                    let show = |o: Option<i64>| o.map_or("-".to_owned(), |v| v.to_string());
                    let tp = &l.topic_partition;
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}",
                        tp.topic,
                        tp.partition,
                        show(l.committed),
                        l.end_offset,
                        show(l.lag)
                    )
                    .map_err(io_err)?;
                }
            }
        }
        GroupCmd::Reset { group, to, execute } => {
            let mut tps = Vec::new();
            for t in &args.topics {
                cluster.track_topics([t.as_str()]);
                let md = cluster.refresh_metadata().await?;
                let n = md
                    .partition_count(t)
                    .ok_or_else(|| ClientError::UnknownTopicOrPartition { topic: t.clone(), partition: None })?;
                tps.extend(
                    (0..n as i32)
                        .filter(|p| args.partition.is_none_or(|q| q == *p))
                        .map(|p| TopicPartition::new(t.as_str(), p)),
                );
            }
            let planned = reset_offsets(cluster, group, &tps, *to, *execute).await?;
            for (tp, o) in planned {
                writeln!(out, "{}\t{}\t{}", tp.topic, tp.partition, o).map_err(io_err)?;
            }
            if !execute && !args.quiet {
                eprintln!("% dry run: add --execute to commit these offsets");
            }
        }
    }
    Ok(())
}
