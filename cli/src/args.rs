//! kcat-compatible command-line arguments.

use std::collections::BTreeMap;

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-C`
    Consume,
    /// `-P`
    Produce,
    /// `-L`
    List,
    /// `-Q`
    Query,
    /// `read-range TOPIC PARTITION FROM UNTIL`
    ReadRange,
    /// `-G GROUP topic…`: balanced consume in a consumer group.
    GroupConsume,
    /// `group list|describe|lag|reset-offsets`
    Group,
}

/// A `group` subcommand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupCmd {
    /// `group list`
    List,
    /// `group describe GROUP`
    Describe(String),
    /// `group lag GROUP`
    Lag(String),
    /// `group reset-offsets GROUP -t TOPIC --to-… [--execute]`
    Reset { group: String, to: ferrokafka_client::group::admin::ResetTo, execute: bool },
}

/// Where consuming starts (`-o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOffset {
    /// `beginning`
    Beginning,
    /// `end`
    End,
    /// `N`: an absolute offset.
    Absolute(i64),
    /// `-N`: N records before the end.
    FromEnd(i64),
    /// `s@TS`: the first offset with a timestamp ≥ TS (ms).
    Timestamp(i64),
}

/// Parsed arguments.
#[derive(Clone, Debug)]
pub struct Args {
    pub mode: Mode,
    pub config: BTreeMap<String, String>,
    pub topics: Vec<String>,
    pub partition: Option<i32>,
    pub offset: StartOffset,
    pub exit_at_end: bool,
    pub count: Option<u64>,
    pub format: Option<String>,
    pub json: bool,
    pub key_delimiter: Option<String>,
    pub headers: Vec<(String, Option<String>)>,
    pub quiet: bool,
    pub range: Option<(String, i32, i64, i64)>,
    pub group: Option<String>,
    pub group_cmd: Option<GroupCmd>,
    /// `-d CONTEXTS` (or `-X debug=…`): librdkafka debug contexts, as tracing output.
    pub debug: Option<String>,
    /// `-v` (repeatable): more log output.
    pub verbose: u8,
    /// `-u`: flush stdout after each record.
    pub unbuffered: bool,
    /// `-k KEY`: the key of every produced record.
    pub produce_key: Option<String>,
    /// `-D DELIM`: the message delimiter (input of -P, output of -C); `\n` by default.
    pub delimiter: Option<String>,
    /// `-l FILE`: produce the messages of this file (split as stdin is) instead of stdin.
    pub input_file: Option<String>,
    /// `--stats` (or librdkafka's `-X statistics.interval.ms=N`): a statistics line
    /// (librdkafka's JSON) on stderr this often while consuming.
    pub stats: Option<std::time::Duration>,
}

/// A usage error (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

fn value<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<&'a String, UsageError> {
    it.next().ok_or_else(|| UsageError(format!("{flag} needs a value")))
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, UsageError> {
    s.parse().map_err(|_| UsageError(format!("{what}: {s:?} is not a number")))
}

/// Parses `-o`.
pub fn parse_offset(s: &str) -> Result<StartOffset, UsageError> {
    Ok(match s {
        "beginning" => StartOffset::Beginning,
        "end" => StartOffset::End,
        s if s.starts_with("s@") => StartOffset::Timestamp(number(&s[2..], "-o s@")?),
        s if s.starts_with('-') => StartOffset::FromEnd(number(&s[1..], "-o -N")?),
        s => StartOffset::Absolute(number(s, "-o")?),
    })
}

/// Reads a `-F` file of `key=value` lines (`#` comments).
pub(crate) fn config_file(path: &str, config: &mut BTreeMap<String, String>) -> Result<(), UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("-F {path}: {e}")))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| UsageError(format!("{path}:{}: expected key=value", n + 1)))?;
        config.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(())
}

/// kcat's short options that take a value (its getopt string is
/// `PCG:LQt:p:b:z:o:eED:K:k:H:Od:qvF:X:c:Tuf:ZlVhs:r:Jm:U:`).
const WITH_VALUE: &str = "GtpbzoDKkHdFXcfsrmU";
/// kcat's short options without a value.
const FLAGS: &str = "PCLQeEOqvTuZlVhJ";

/// Splits kcat command lines into one token per option as getopt reads them: values
/// attached (`-K:`, `-obeginning`, `-b127.0.0.1:9092`, `-Xlinger.ms=5`) or in the next
/// argument, flags bundled (`-qe`, `-Ce`, `-eo end`), `--` ending the options. Other
/// words (`read-range`, `group`, `--to-offset`) pass through unchanged.
pub fn getopt(argv: &[String]) -> Result<Vec<String>, UsageError> {
    let mut out = Vec::with_capacity(argv.len());
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            out.extend(it.by_ref().cloned());
            break;
        }
        let Some(cluster) = a.strip_prefix('-').filter(|c| !c.is_empty() && !c.starts_with('-')) else {
            out.push(a.clone());
            continue;
        };
        for (i, c) in cluster.char_indices() {
            if WITH_VALUE.contains(c) {
                out.push(format!("-{c}"));
                let attached = &cluster[i + c.len_utf8()..];
                out.push(match attached {
                    "" => value(&mut it, &format!("-{c}"))?.clone(),
                    v => v.to_owned(),
                });
                break;
            } else if FLAGS.contains(c) {
                out.push(format!("-{c}"));
            } else {
                return Err(UsageError(format!("unknown option -{c}")));
            }
        }
    }
    Ok(out)
}

/// Parses the command line (without the program name).
pub fn parse(argv: &[String]) -> Result<Args, UsageError> {
    let argv = getopt(argv)?;
    let argv = argv.as_slice();
    let mut mode = None;
    let mut args = Args {
        mode: Mode::Consume,
        config: BTreeMap::new(),
        topics: Vec::new(),
        partition: None,
        offset: StartOffset::Beginning,
        exit_at_end: false,
        count: None,
        format: None,
        json: false,
        key_delimiter: None,
        headers: Vec::new(),
        quiet: false,
        range: None,
        group: None,
        group_cmd: None,
        debug: None,
        verbose: 0,
        unbuffered: false,
        produce_key: None,
        delimiter: None,
        input_file: None,
        stats: None,
    };
    let mut stats_flag = false;
    let mut reset_to = None;
    let mut execute = false;
    let mut it = argv.iter();
    let mut positional = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-C" => mode = Some(Mode::Consume),
            "-P" => mode = Some(Mode::Produce),
            "-L" => mode = Some(Mode::List),
            "-Q" => mode = Some(Mode::Query),
            "-b" => {
                args.config.insert("bootstrap.servers".into(), value(&mut it, "-b")?.clone());
            }
            "-t" => args.topics.push(value(&mut it, "-t")?.clone()),
            "-p" => args.partition = Some(number(value(&mut it, "-p")?, "-p")?),
            "-o" => args.offset = parse_offset(value(&mut it, "-o")?)?,
            "-e" => args.exit_at_end = true,
            "-c" => args.count = Some(number(value(&mut it, "-c")?, "-c")?),
            "-f" => args.format = Some(value(&mut it, "-f")?.clone()),
            "-J" => args.json = true,
            "-K" => args.key_delimiter = Some(value(&mut it, "-K")?.clone()),
            "-q" => args.quiet = true,
            "-z" => {
                args.config.insert("compression.type".into(), value(&mut it, "-z")?.clone());
            }
            "-H" => {
                let h = value(&mut it, "-H")?;
                args.headers.push(match h.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (h.clone(), None),
                });
            }
            "-X" => {
                let kv = value(&mut it, "-X")?;
                let (k, v) = kv.split_once('=').ok_or_else(|| UsageError(format!("-X {kv}: expected key=value")))?;
                args.config.insert(k.to_owned(), v.to_owned());
            }
            "-F" => config_file(value(&mut it, "-F")?, &mut args.config)?,
            "-d" => args.debug = Some(value(&mut it, "-d")?.clone()),
            "-v" => args.verbose = args.verbose.saturating_add(1),
            "-u" => args.unbuffered = true,
            "-k" => args.produce_key = Some(value(&mut it, "-k")?.clone()),
            "-D" => args.delimiter = Some(value(&mut it, "-D")?.clone()),
            "-l" => args.input_file = Some(value(&mut it, "-l")?.clone()),
            "--stats" => stats_flag = true,
            "-E" | "-O" | "-T" | "-Z" | "-s" | "-r" | "-m" | "-U" => {
                return Err(UsageError(format!("kcat option {a} is not supported by ferrokafka")))
            }
            "read-range" => mode = Some(Mode::ReadRange),
            "group" if mode.is_none() => mode = Some(Mode::Group),
            "-G" => {
                args.group = Some(value(&mut it, "-G")?.clone());
                mode = Some(Mode::GroupConsume);
            }
            "--to-earliest" => reset_to = Some(ferrokafka_client::group::admin::ResetTo::Earliest),
            "--to-latest" => reset_to = Some(ferrokafka_client::group::admin::ResetTo::Latest),
            "--to-offset" => {
                reset_to = Some(ferrokafka_client::group::admin::ResetTo::Offset(number(
                    value(&mut it, "--to-offset")?,
                    "--to-offset",
                )?))
            }
            "--to-datetime" => {
                reset_to = Some(ferrokafka_client::group::admin::ResetTo::Timestamp(number(
                    value(&mut it, "--to-datetime")?,
                    "--to-datetime",
                )?))
            }
            "--execute" => execute = true,
            s if s.starts_with('-') && s.len() > 1 => return Err(UsageError(format!("unknown option {s}"))),
            s => positional.push(s.to_owned()),
        }
    }
    args.mode = mode.ok_or_else(|| UsageError("one of -C, -P, -L, -Q or read-range is required".into()))?;
    // librdkafka's statistics interval: a CLI setting here, not a client key.
    let interval = match args.config.remove("statistics.interval.ms") {
        Some(v) => Some(number::<u64>(&v, "statistics.interval.ms")?),
        None => None,
    };
    args.stats = match (stats_flag, interval) {
        (_, Some(ms)) if ms > 0 => Some(std::time::Duration::from_millis(ms)),
        (true, _) => Some(std::time::Duration::from_secs(5)),
        _ => None,
    };
    if args.mode == Mode::ReadRange {
        let [topic, p, from, until] = positional.as_slice() else {
            return Err(UsageError("read-range takes TOPIC PARTITION FROM UNTIL".into()));
        };
        args.range = Some((topic.clone(), number(p, "PARTITION")?, number(from, "FROM")?, number(until, "UNTIL")?));
    } else if args.mode == Mode::GroupConsume {
        args.topics.extend(positional.iter().cloned());
    } else if args.mode == Mode::Group {
        let cmd = match positional.as_slice() {
            [c] if c == "list" => GroupCmd::List,
            [c, g] if c == "describe" => GroupCmd::Describe(g.clone()),
            [c, g] if c == "lag" => GroupCmd::Lag(g.clone()),
            [c, g] if c == "reset-offsets" => {
                let to = reset_to.ok_or_else(|| {
                    UsageError(
                        "reset-offsets needs --to-earliest, --to-latest, --to-offset N or --to-datetime MS".into(),
                    )
                })?;
                if args.topics.is_empty() {
                    return Err(UsageError("reset-offsets needs -t TOPIC".into()));
                }
                GroupCmd::Reset { group: g.clone(), to, execute }
            }
            _ => {
                return Err(UsageError(
                    "group takes: list | describe GROUP | lag GROUP | reset-offsets GROUP -t TOPIC --to-…".into(),
                ))
            }
        };
        args.group_cmd = Some(cmd);
    } else if let Some(extra) = positional.first() {
        return Err(UsageError(format!("unexpected argument {extra:?}")));
    }
    if matches!(args.mode, Mode::Consume | Mode::Produce | Mode::Query | Mode::GroupConsume) && args.topics.is_empty() {
        return Err(UsageError("-t TOPIC is required".into()));
    }
    // librdkafka's `debug` property is what kcat's -d sets; it is not a client key here.
    if let Some(d) = args.config.remove("debug") {
        args.debug.get_or_insert(d);
    }
    if !args.config.contains_key("bootstrap.servers") && !args.config.contains_key("metadata.broker.list") {
        return Err(UsageError("-b BROKERS (or -X bootstrap.servers=…) is required".into()));
    }
    Ok(args)
}

/// The usage text.
pub const USAGE: &str = "\
usage: ferrokafka -C|-P|-L|-Q -b BROKERS [options]
       ferrokafka -G GROUP -b BROKERS [options] TOPIC…     balanced consume in a group
       ferrokafka read-range TOPIC PARTITION FROM UNTIL -b BROKERS [options]
       ferrokafka stream -b BROKERS -G GROUP -t TOPIC… [options]     direct stream (stream --help)
       ferrokafka group list | describe GROUP | lag GROUP -b BROKERS [-J]
       ferrokafka group reset-offsets GROUP -t TOPIC --to-earliest|--to-latest|--to-offset N|--to-datetime MS [--execute]

  -C            consume                  -P  produce lines from stdin
  -L            list metadata            -Q  query offsets for -t topic:partition:timestamp
  -b BROKERS    bootstrap servers        -t TOPIC   topic (repeatable for -C)
  -p N          partition                -o OFFSET  beginning|end|N|-N|s@TIMESTAMP_MS
  -e            exit at the end          -c N       exit after N records
  -f FMT        output format: %t %p %o %k %s %S %K %T %h, \\n \\t
  -J            JSON envelope per record -K DELIM   key delimiter
  -H NAME=VAL   header (produce)         -z CODEC   none|gzip|snappy|lz4|zstd
  -X KEY=VAL    client configuration     -F FILE    configuration file (key=value lines)
  -D DELIM      message delimiter (\\n)   -k KEY     key of every produced record
  -l FILE       produce the messages of FILE instead of stdin
  -d CONTEXTS   debug output on stderr: broker,protocol,consumer,cgrp,topic,metadata,
                fetch,msg,security,eos,admin,all (or RUST_LOG)   -v  more output
  -u            unbuffered output        -q         quiet       -V  version
  --stats       consume: a statistics line (librdkafka's JSON) on stderr every 5 s,
                or every -X statistics.interval.ms=N
  Options may be bundled and values attached as with getopt: -Ce -K: -obeginning

exit codes: 0 ok, 1 runtime error (broker unreachable, unknown topic, …),
            2 usage error, 3 configuration error";

#[cfg(test)]
mod tests {
    use super::*;

    fn g(line: &str) -> Result<Vec<String>, UsageError> {
        getopt(&line.split(' ').map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn getopt_forms() {
        assert_eq!(g("-Ceq -b127.0.0.1:9092 -tT").unwrap(), ["-C", "-e", "-q", "-b", "127.0.0.1:9092", "-t", "T"]);
        assert_eq!(g("-K: -obeginning -o -5 -o-2").unwrap(), ["-K", ":", "-o", "beginning", "-o", "-5", "-o", "-2"]);
        assert_eq!(g("-Xlinger.ms=5 -c10 -eo end").unwrap(), ["-X", "linger.ms=5", "-c", "10", "-e", "-o", "end"]);
        assert_eq!(g("-Pb B -- -notanoption").unwrap(), ["-P", "-b", "B", "-notanoption"]);
        assert_eq!(g("group lag g --to-offset 5 -").unwrap(), ["group", "lag", "g", "--to-offset", "5", "-"]);
        assert!(g("-Cy").is_err(), "unknown letter");
        assert!(g("-Cb").is_err(), "-b needs a value");
        // Normalising twice changes nothing (main normalises, then parse does again).
        let once = g("-Ceq -K: -b B -t T").unwrap();
        assert_eq!(getopt(&once).unwrap(), once);
    }

    #[test]
    fn kcat_lines_parse() {
        let a = parse(&g("-P -bB -tT -K: -zlz4 -k key -D ;; -d broker,cgrp -vv -u").unwrap()).unwrap();
        assert_eq!(a.mode, Mode::Produce);
        assert_eq!(a.config.get("compression.type").map(String::as_str), Some("lz4"));
        assert_eq!(a.key_delimiter.as_deref(), Some(":"));
        assert_eq!((a.produce_key.as_deref(), a.delimiter.as_deref()), (Some("key"), Some(";;")));
        assert_eq!((a.debug.as_deref(), a.verbose, a.unbuffered), (Some("broker,cgrp"), 2, true));
        let x = parse(&g("-L -bB -Xdebug=all").unwrap()).unwrap();
        assert_eq!(x.debug.as_deref(), Some("all"));
        assert!(!x.config.contains_key("debug"), "debug is not passed to the client configuration");
        let e = parse(&g("-C -bB -tT -E").unwrap()).unwrap_err();
        assert!(e.0.contains("not supported"), "{}", e.0);
    }
}
