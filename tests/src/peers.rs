//! Peer clients for interop tests: kcat (librdkafka 2.0.2) and kafka-python.
//!
//! Both are installed by `.ci/run` (`apt-get install kcat`,
//! `pip install -r tests/requirements.txt`). A missing peer fails the test.

use std::io::Write;
use std::process::{Command, Stdio};

/// A record as a peer produced or consumed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// Partition.
    pub partition: i32,
    /// Offset (-1 when producing).
    pub offset: i64,
    /// Key (`None` = null).
    pub key: Option<String>,
    /// Value (`None` = null).
    pub value: Option<String>,
}

fn run(cmd: &mut Command, stdin: &[u8], what: &str) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e} (run .ci/run or install it)"))?;
    let mut input = child.stdin.take().ok_or("no stdin")?;
    input.write_all(stdin).map_err(|e| format!("{what} stdin: {e}"))?;
    drop(input);
    let out = child.wait_with_output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Produces `key:value` lines with kcat (`-z codec`, one batch thanks to linger.ms).
pub fn kcat_produce(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    records: &[(&str, &str)],
    codec: &str,
) -> Result<(), String> {
    let input: String = records.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    run(
        Command::new("timeout")
            .args(["60", "kcat", "-P", "-b", bootstrap, "-t", topic, "-p", &partition.to_string()])
            .args(["-K:", "-z", codec, "-X", "linger.ms=100"]),
        input.as_bytes(),
        "kcat -P",
    )
    .map(drop)
}

/// Consumes `count` records from the beginning of `topic` with kcat.
pub fn kcat_consume(bootstrap: &str, topic: &str, count: usize) -> Result<Vec<PeerRecord>, String> {
    let out = run(
        Command::new("timeout")
            .args(["60", "kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J"])
            .args(["-c", &count.to_string()]),
        b"",
        "kcat -C",
    )?;
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).map_err(|e| format!("kcat -J line {l:?}: {e}"))?;
            Ok(PeerRecord {
                partition: v["partition"].as_i64().unwrap_or(-1) as i32,
                offset: v["offset"].as_i64().unwrap_or(-1),
                key: v["key"].as_str().map(str::to_owned),
                value: v["payload"].as_str().map(str::to_owned),
            })
        })
        .collect()
}

const KPY_PRODUCE: &str = r#"
import json, sys
from kafka import KafkaProducer
boot, topic, part, codec = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
p = KafkaProducer(bootstrap_servers=boot, compression_type=None if codec == "none" else codec,
                  linger_ms=50, api_version_auto_timeout_ms=20000, request_timeout_ms=20000)
for k, v in json.load(sys.stdin):
    p.send(topic, key=None if k is None else k.encode(), value=None if v is None else v.encode(), partition=part)
p.flush(30)
p.close(10)
"#;

const KPY_CONSUME: &str = r#"
import json, sys
from kafka import KafkaConsumer, TopicPartition
boot, topic, part, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = KafkaConsumer(bootstrap_servers=boot, group_id=None, enable_auto_commit=False,
                  api_version_auto_timeout_ms=20000, request_timeout_ms=30000)
tp = TopicPartition(topic, part)
c.assign([tp]); c.seek_to_beginning(tp)
out = []
import time
deadline = time.time() + 30
while len(out) < count and time.time() < deadline:
    for recs in c.poll(timeout_ms=500).values():
        for r in recs:
            out.append([r.partition, r.offset, None if r.key is None else r.key.decode(),
                        None if r.value is None else r.value.decode()])
c.close()
json.dump(out[:count], sys.stdout)
"#;

/// Produces records to one partition with kafka-python.
pub fn kpy_produce(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    records: &[(Option<&str>, Option<&str>)],
    codec: &str,
) -> Result<(), String> {
    let input = serde_json::to_vec(records).map_err(|e| e.to_string())?;
    run(
        Command::new("timeout").args([
            "90",
            "python3",
            "-c",
            KPY_PRODUCE,
            bootstrap,
            topic,
            &partition.to_string(),
            codec,
        ]),
        &input,
        "kafka-python producer",
    )
    .map(drop)
}

/// Consumes `count` records of one partition from the beginning with kafka-python.
pub fn kpy_consume(bootstrap: &str, topic: &str, partition: i32, count: usize) -> Result<Vec<PeerRecord>, String> {
    let out = run(
        Command::new("timeout").args([
            "90",
            "python3",
            "-c",
            KPY_CONSUME,
            bootstrap,
            topic,
            &partition.to_string(),
            &count.to_string(),
        ]),
        b"",
        "kafka-python consumer",
    )?;
    let rows: Vec<(i32, i64, Option<String>, Option<String>)> =
        serde_json::from_str(&out).map_err(|e| format!("kafka-python output {out:?}: {e}"))?;
    Ok(rows.into_iter().map(|(partition, offset, key, value)| PeerRecord { partition, offset, key, value }).collect())
}

const CK_READ_COMMITTED: &str = r#"
import sys, json, time
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka import KafkaError
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "ck-" + sys.argv[2],
              "isolation.level": "read_committed", "enable.auto.commit": False,
              "enable.partition.eof": True})
parts = int(sys.argv[3])
c.assign([TopicPartition(sys.argv[2], p, 0) for p in range(parts)])
# To the end of every partition (its EOF event, at the last stable offset), at most 50 s,
# then until 2 s pass without a record.
out, at_end, start, last = [], set(), time.time(), None
while (last is None and time.time() - start < 50) or (last is not None and time.time() - last < 2):
    m = c.poll(0.2)
    if m is not None and m.error() and m.error().code() == KafkaError._PARTITION_EOF:
        at_end.add(m.partition())
    elif m is not None and not m.error():
        out.append(m.value().decode())
        at_end.discard(m.partition())
        if last is not None:
            last = time.time()
    if last is None and len(at_end) == parts:
        last = time.time()
c.close()
if last is None:
    sys.exit("no end reached on partitions %s in 50 s" % sorted(set(range(parts)) - at_end))
json.dump(out, sys.stdout)
"#;

/// Every value of `topic` (partitions 0..`partitions`, from offset 0) that
/// confluent-kafka (librdkafka 2.16) reads with `isolation.level=read_committed`: to
/// the end of every partition, then until 2 s pass without a record.
pub fn ck_read_committed(bootstrap: &str, topic: &str, partitions: i32) -> Result<Vec<String>, String> {
    let out = run(
        Command::new("timeout").args([
            "60",
            "python3",
            "-c",
            CK_READ_COMMITTED,
            bootstrap,
            topic,
            &partitions.to_string(),
        ]),
        b"",
        "confluent-kafka consumer",
    )?;
    serde_json::from_str(&out).map_err(|e| format!("confluent-kafka output {out:?}: {e}"))
}

const CK_GROUP_MEMBER: &str = r#"
import json, sys, time
from confluent_kafka import Consumer
bootstrap, group, topic = sys.argv[1:4]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
last = None
while True:
    m = c.poll(0.2)
    if m is not None and m.error():
        print("ERROR " + str(m.error()), flush=True)
    now = sorted(tp.partition for tp in c.assignment())
    if now != last:
        print("ASSIGNED " + json.dumps(now), flush=True)
        last = now
    if sys.stdin in __import__("select").select([sys.stdin], [], [], 0)[0]:
        break
c.close()
print("CLOSED", flush=True)
"#;

/// A confluent-kafka (librdkafka 2.16) consumer in a `group.protocol=consumer` group,
/// running in its own process; it reports each change of its assignment.
pub struct CkGroupMember {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    assigned: Vec<i32>,
}

impl CkGroupMember {
    /// Starts the member on `topic` in `group`.
    pub fn start(bootstrap: &str, group: &str, topic: &str) -> Result<CkGroupMember, String> {
        let mut child = Command::new("python3")
            .args(["-c", CK_GROUP_MEMBER, bootstrap, group, topic])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run python3 with confluent-kafka: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(CkGroupMember { child, lines, assigned: Vec::new() })
    }

    /// Its latest reported assignment (partition numbers); fails on a reported error.
    pub fn assigned(&mut self) -> Result<Vec<i32>, String> {
        while let Ok(line) = self.lines.try_recv() {
            if let Some(json) = line.strip_prefix("ASSIGNED ") {
                self.assigned = serde_json::from_str(json).map_err(|e| format!("{line}: {e}"))?;
            } else if line.starts_with("ERROR") {
                return Err(format!("confluent-kafka member: {line}"));
            }
        }
        Ok(self.assigned.clone())
    }

    /// Closes the consumer (it leaves the group) and waits for the process.
    pub fn close(mut self) -> Result<(), String> {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"q\n");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match self.lines.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(line) if line == "CLOSED" => break,
                Ok(_) => {}
                Err(_) if std::time::Instant::now() > deadline => {
                    let _ = self.child.kill();
                    return Err("confluent-kafka member did not close within 30 s".into());
                }
                Err(_) => {}
            }
        }
        self.child.wait().map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Drop for CkGroupMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
