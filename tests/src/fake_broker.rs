//! A scripted fake broker for bad-input tests: it accepts one connection and plays
//! a list of steps (read a request, send bytes, close), so a test can feed a client
//! malformed frames, oversized length prefixes, wrong correlation ids or
//! truncated responses.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

/// The header fields of a request the fake broker read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// API key.
    pub api_key: i16,
    /// API version.
    pub version: i16,
    /// Correlation id.
    pub correlation_id: i32,
}

type Reply = Box<dyn FnOnce(RequestInfo) -> Vec<u8> + Send>;

/// One step of a script.
pub enum Step {
    /// Read one request frame, then send what the closure builds from its header.
    Reply(Reply),
    /// Read one request frame and send nothing.
    Read,
    /// Send these bytes as they are.
    Raw(Vec<u8>),
    /// Wait.
    Sleep(Duration),
    /// Close the connection.
    Close,
}

impl Step {
    /// Reply with the bytes the closure builds.
    pub fn reply(f: impl FnOnce(RequestInfo) -> Vec<u8> + Send + 'static) -> Step {
        Step::Reply(Box::new(f))
    }
}

/// A size-prefixed response frame: header (for `api`/`version`) + encoded body.
pub fn response_frame<B: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &B) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, api.response_header_version(version)).expect("encode response header");
    body.encode(&mut buf, version).expect("encode response body");
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

/// Wraps `payload` in a size prefix.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// A fake broker playing a script on the first connection it accepts.
pub struct FakeBroker {
    addr: String,
    handle: Option<JoinHandle<Result<Vec<RequestInfo>, String>>>,
}

impl FakeBroker {
    /// Listens on a random 127.0.0.1 port and plays `script` on the first connection.
    pub fn start(script: Vec<Step>) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake broker");
        let addr = listener.local_addr().expect("local addr").to_string();
        let handle = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().map_err(|e| e.to_string())?;
            sock.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
            play(&mut sock, script)
        });
        FakeBroker { addr, handle: Some(handle) }
    }

    /// Address to connect to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Waits for the script to end and returns the requests it read.
    pub fn finish(mut self) -> Result<Vec<RequestInfo>, String> {
        self.handle.take().expect("joined once").join().map_err(|_| "fake broker panicked".to_string())?
    }
}

fn read_request(sock: &mut TcpStream) -> Result<RequestInfo, String> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len).map_err(|e| format!("reading request size: {e}"))?;
    let len = i32::from_be_bytes(len);
    let mut body = vec![0u8; usize::try_from(len).map_err(|_| "negative request size")?];
    sock.read_exact(&mut body).map_err(|e| format!("reading request: {e}"))?;
    if body.len() < 8 {
        return Err("request shorter than its header".into());
    }
    Ok(RequestInfo {
        api_key: i16::from_be_bytes([body[0], body[1]]),
        version: i16::from_be_bytes([body[2], body[3]]),
        correlation_id: i32::from_be_bytes([body[4], body[5], body[6], body[7]]),
    })
}

fn play(sock: &mut TcpStream, script: Vec<Step>) -> Result<Vec<RequestInfo>, String> {
    let mut seen = Vec::new();
    for step in script {
        match step {
            Step::Read => seen.push(read_request(sock)?),
            Step::Reply(f) => {
                let info = read_request(sock)?;
                seen.push(info);
                sock.write_all(&f(info)).map_err(|e| e.to_string())?;
            }
            Step::Raw(bytes) => sock.write_all(&bytes).map_err(|e| e.to_string())?,
            Step::Sleep(d) => std::thread::sleep(d),
            Step::Close => break,
        }
    }
    let _ = sock.shutdown(std::net::Shutdown::Both);
    Ok(seen)
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        // Unblock a broker still waiting in accept() so its thread ends.
        if self.handle.is_some() {
            let _ = TcpStream::connect(&self.addr);
        }
    }
}
