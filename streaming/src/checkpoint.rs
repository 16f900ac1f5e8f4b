//! Checkpoints: a stream's positions and the ranges of batches generated but not
//! yet completed, replaced atomically (write, fsync, rename, fsync the directory).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Result, StreamingError};
use crate::offset_range::{OffsetRange, TopicPartition};

/// What a checkpoint holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Next offset of every tracked partition.
    pub offsets: BTreeMap<TopicPartition, i64>,
    /// Batches generated but not completed: (batch time, ranges), oldest first.
    pub pending: Vec<(i64, Vec<OffsetRange>)>,
}

const FILE: &str = "offsets.json";
/// Largest checkpoint file read (a corrupt size must not make us allocate).
const MAX_BYTES: u64 = 64 << 20;

fn err(path: &Path, reason: impl Into<String>) -> StreamingError {
    StreamingError::Checkpoint { path: path.display().to_string(), reason: reason.into() }
}

fn range_json(r: &OffsetRange) -> Value {
    json!([&*r.topic, r.partition, r.from_offset, r.until_offset])
}

impl Checkpoint {
    /// Writes the checkpoint into `dir` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
        let path = dir.join(FILE);
        let tmp = dir.join(format!("{FILE}.tmp"));
        let offsets: Vec<Value> = self.offsets.iter().map(|(tp, o)| json!([&*tp.topic, tp.partition, o])).collect();
        let pending: Vec<Value> = self
            .pending
            .iter()
            .map(|(t, rs)| json!({"time": t, "ranges": rs.iter().map(range_json).collect::<Vec<_>>()}))
            .collect();
        let body = json!({"version": 1, "offsets": offsets, "pending": pending}).to_string();
        let mut f = std::fs::File::create(&tmp).map_err(|e| err(&tmp, e.to_string()))?;
        f.write_all(body.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| err(&tmp, e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| err(&path, e.to_string()))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads the checkpoint in `dir`, if there is one.
    pub fn read(dir: &Path) -> Result<Option<Checkpoint>> {
        let path: PathBuf = dir.join(FILE);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(&path, e.to_string())),
        };
        if meta.len() > MAX_BYTES {
            return Err(err(&path, format!("{} bytes is larger than the {MAX_BYTES}-byte limit", meta.len())));
        }
        let text = std::fs::read(&path).map_err(|e| err(&path, e.to_string()))?;
        Self::parse(&text).map(Some).map_err(|reason| err(&path, reason))
    }

    /// Parses checkpoint bytes (exposed for fuzzing).
    pub fn parse(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not a checkpoint: {e}"))?;
        if v["version"].as_i64() != Some(1) {
            return Err(format!("unsupported checkpoint version {}", v["version"]));
        }
        let tuple = |x: &Value| -> std::result::Result<(String, i32, Vec<i64>), String> {
            let a = x.as_array().ok_or("expected an array")?;
            let topic = a.first().and_then(Value::as_str).ok_or("missing topic")?.to_owned();
            let partition =
                a.get(1).and_then(Value::as_i64).and_then(|p| i32::try_from(p).ok()).ok_or("bad partition")?;
            let rest =
                a[2..].iter().map(|n| n.as_i64().ok_or("bad offset")).collect::<std::result::Result<Vec<i64>, _>>()?;
            Ok((topic, partition, rest))
        };
        let mut cp = Checkpoint::default();
        for o in v["offsets"].as_array().ok_or("missing offsets")? {
            let (t, p, rest) = tuple(o)?;
            let [offset] = rest[..] else { return Err("an offset entry needs topic, partition, offset".into()) };
            cp.offsets.insert(TopicPartition::new(t, p), offset);
        }
        for b in v["pending"].as_array().ok_or("missing pending")? {
            let time = b["time"].as_i64().ok_or("pending batch without time")?;
            let mut ranges = Vec::new();
            for r in b["ranges"].as_array().ok_or("pending batch without ranges")? {
                let (t, p, rest) = tuple(r)?;
                let [from, until] = rest[..] else { return Err("a range needs topic, partition, from, until".into()) };
                ranges.push(OffsetRange::new(t, p, from, until).map_err(|e| e.to_string())?);
            }
            cp.pending.push((time, ranges));
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("ferrokafka-cp-{}", std::process::id()));
        assert_eq!(Checkpoint::read(&dir).unwrap(), None);
        let cp = Checkpoint {
            offsets: BTreeMap::from([(TopicPartition::new("a", 0), 10), (TopicPartition::new("b", 3), 7)]),
            pending: vec![(1000, vec![OffsetRange::new("a", 0, 5, 10).unwrap()])],
        };
        cp.write(&dir).unwrap();
        assert_eq!(Checkpoint::read(&dir).unwrap(), Some(cp));
        std::fs::write(dir.join(FILE), b"{\"version\":1,\"offsets\":[[\"a\",0]],\"pending\":[]}").unwrap();
        assert!(matches!(Checkpoint::read(&dir), Err(StreamingError::Checkpoint { .. })));
        assert!(Checkpoint::parse(
            b"{\"version\":1,\"offsets\":[],\"pending\":[{\"time\":1,\"ranges\":[[\"a\",0,9,3]]}]}"
        )
        .is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
