//! Record output: kcat's `-f` tokens, the `-J` JSON envelope, binary-safe.

use std::io::Write;

use ferrokafka_client::consumer::ConsumerRecordView;
use ferrokafka_protocol::records::{RecordView, TimestampType};

/// How each record is printed.
#[derive(Debug, Clone)]
pub enum Output {
    /// A kcat `-f` format string.
    Format(Vec<u8>),
    /// `-J`.
    Json,
}

impl Output {
    /// From the `-f`, `-J`, `-K` and `-D` options (kcat: `-f` wins, else
    /// `[%k KEY_DELIM]%s` then the message delimiter, `\\n` by default).
    pub fn new(format: Option<&str>, json: bool, key_delimiter: Option<&str>, delimiter: Option<&str>) -> Output {
        if json {
            return Output::Json;
        }
        let end = delimiter.unwrap_or("\\n");
        let f = match (format, key_delimiter) {
            (Some(f), _) => f.to_owned(),
            (None, Some(d)) => format!("%k{d}%s{end}"),
            (None, None) => format!("%s{end}"),
        };
        Output::Format(f.into_bytes())
    }

    /// Writes one record.
    pub fn write(&self, out: &mut impl Write, topic: &str, partition: i32, r: &RecordView<'_>) -> std::io::Result<()> {
        match self {
            Output::Json => write_json(out, topic, partition, r),
            Output::Format(f) => write_format(out, f, topic, partition, r),
        }
    }

    /// Writes a consumed record.
    pub fn write_consumed(&self, out: &mut impl Write, r: &ConsumerRecordView<'_>) -> std::io::Result<()> {
        self.write(out, &r.topic_partition.topic, r.topic_partition.partition, &r.record)
    }
}

fn write_format(
    out: &mut impl Write,
    f: &[u8],
    topic: &str,
    partition: i32,
    r: &RecordView<'_>,
) -> std::io::Result<()> {
    let mut i = 0;
    while i < f.len() {
        let c = f[i];
        let next = f.get(i + 1).copied();
        match (c, next) {
            (b'%', Some(t)) => {
                match t {
                    b't' => out.write_all(topic.as_bytes())?,
                    b'p' => write!(out, "{partition}")?,
                    b'o' => write!(out, "{}", r.offset)?,
                    b'k' => out.write_all(r.key().unwrap_or_default())?,
                    b's' => out.write_all(r.value().unwrap_or_default())?,
                    b'K' => write!(out, "{}", r.key().map_or(-1, |k| k.len() as i64))?,
                    b'S' => write!(out, "{}", r.value().map_or(-1, |v| v.len() as i64))?,
                    b'T' => write!(out, "{}", r.timestamp)?,
                    b'h' => {
                        for (n, h) in r.headers().iter().enumerate() {
                            if n > 0 {
                                out.write_all(b",")?;
                            }
                            out.write_all(h.key)?;
                            out.write_all(b"=")?;
                            out.write_all(h.value.unwrap_or_default())?;
                        }
                    }
                    b'%' => out.write_all(b"%")?,
                    other => out.write_all(&[b'%', other])?,
                }
                i += 2;
            }
            (b'\\', Some(t)) => {
                match t {
                    b'n' => out.write_all(b"\n")?,
                    b't' => out.write_all(b"\t")?,
                    b'r' => out.write_all(b"\r")?,
                    b'0' => out.write_all(b"\0")?,
                    b'\\' => out.write_all(b"\\")?,
                    other => out.write_all(&[b'\\', other])?,
                }
                i += 2;
            }
            _ => {
                out.write_all(&[c])?;
                i += 1;
            }
        }
    }
    Ok(())
}

fn text(b: Option<&[u8]>) -> serde_json::Value {
    b.map_or(serde_json::Value::Null, |b| serde_json::Value::String(String::from_utf8_lossy(b).into_owned()))
}

fn write_json(out: &mut impl Write, topic: &str, partition: i32, r: &RecordView<'_>) -> std::io::Result<()> {
    let tstype = match r.timestamp_type {
        TimestampType::CreateTime => "create",
        TimestampType::LogAppendTime => "logappend",
        TimestampType::NotAvailable => "none",
    };
    let headers: Vec<serde_json::Value> = r.headers().iter().flat_map(|h| [text(Some(h.key)), text(h.value)]).collect();
    let v = serde_json::json!({
        "topic": topic,
        "partition": partition,
        "offset": r.offset,
        "tstype": tstype,
        "ts": r.timestamp,
        "headers": headers,
        "key": text(r.key()),
        "payload": text(r.value()),
    });
    serde_json::to_writer(&mut *out, &v)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use ferrokafka_protocol::records::{DecodeOptions, NewHeader, NewRecord, Record, RecordBatchBuilder, RecordSet};
    use ferrokafka_protocol::Compression;

    fn record() -> Record {
        let mut b = RecordBatchBuilder::new(Compression::None).base_offset(42);
        let headers = [NewHeader { key: "h", value: Some(b"1") }];
        b.push(&NewRecord { key: Some(b"k\x00"), value: Some(b"v\xff"), headers: &headers, timestamp: 7 }).unwrap();
        let mut out = BytesMut::new();
        b.finish(&mut out).unwrap();
        let batch = RecordSet::new(out.freeze(), DecodeOptions::default()).next().unwrap().unwrap();
        batch.records().next().unwrap().unwrap()
    }

    #[test]
    fn format_tokens_are_binary_safe() {
        let mut out = Vec::new();
        Output::new(Some("%t|%p|%o|%k|%s|%K|%S|%T|%h|%%|%x\\t\\n"), false, None, None)
            .write(&mut out, "tp", 3, &record().view())
            .unwrap();
        assert_eq!(out, b"tp|3|42|k\x00|v\xff|2|2|7|h=1|%|%x\t\n");
        let mut out = Vec::new();
        Output::new(None, false, Some(":"), None).write(&mut out, "t", 0, &record().view()).unwrap();
        assert_eq!(out, b"k\x00:v\xff\n");
    }

    #[test]
    fn json_envelope() {
        let mut out = Vec::new();
        Output::Json.write(&mut out, "t", 1, &record().view()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["offset"], 42);
        assert_eq!(v["partition"], 1);
        assert_eq!(v["tstype"], "create");
        assert_eq!(v["headers"], serde_json::json!(["h", "1"]));
    }
}
