//! Produce input: messages split on kcat's `-D` delimiter.

use std::io::BufRead;

/// Reads the next message up to `delim` (or the end of the input) into `out`, without
/// the delimiter; `false` at the end of the input.
pub fn read_message(input: &mut impl BufRead, delim: &[u8], out: &mut Vec<u8>) -> std::io::Result<bool> {
    out.clear();
    let Some(&last) = delim.last() else {
        // An empty delimiter: the whole input is one message.
        input.read_to_end(out)?;
        return Ok(!out.is_empty());
    };
    loop {
        if input.read_until(last, out)? == 0 {
            return Ok(!out.is_empty());
        }
        if out.ends_with(delim) {
            out.truncate(out.len() - delim.len());
            return Ok(true);
        }
        if out.last() != Some(&last) {
            return Ok(true); // the input ended without a delimiter
        }
    }
}

/// kcat's delimiter escapes: `\n`, `\r`, `\t`, `\\`, `\xNN`; other bytes as they are.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'n')) => out.push(b'\n'),
            (b'\\', Some(b'r')) => out.push(b'\r'),
            (b'\\', Some(b't')) => out.push(b'\t'),
            (b'\\', Some(b'\\')) => out.push(b'\\'),
            (b'\\', Some(b'x')) if hex(b.get(i + 2..i + 4)).is_some() => {
                out.extend(hex(b.get(i + 2..i + 4)));
                i += 4;
                continue;
            }
            (c, _) => {
                out.push(c);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    out
}

fn hex(digits: Option<&[u8]>) -> Option<u8> {
    u8::from_str_radix(std::str::from_utf8(digits?).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], delim: &str) -> Vec<Vec<u8>> {
        let (mut r, mut out, mut all) = (input, Vec::new(), Vec::new());
        let d = unescape(delim);
        while read_message(&mut r, &d, &mut out).unwrap() {
            all.push(out.clone());
        }
        all
    }

    #[test]
    fn messages_split_on_any_delimiter() {
        assert_eq!(split(b"a\nb\n", "\\n"), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(split(b"a\nb", "\\n"), [b"a".to_vec(), b"b".to_vec()], "last message without delimiter");
        assert_eq!(split(b"a;;b;c;;", ";;"), [b"a".to_vec(), b"b;c".to_vec()]);
        assert_eq!(split(b"x\x01y", "\\x01"), [b"x".to_vec(), b"y".to_vec()]);
        assert_eq!(split(b"one\ntwo", ""), [b"one\ntwo".to_vec()], "empty delimiter: one message");
        assert!(split(b"", "\\n").is_empty());
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("\\t|\\r|\\\\|\\x41|\\xZZ|é"), "\t|\r|\\|A|\\xZZ|é".as_bytes());
    }
}
