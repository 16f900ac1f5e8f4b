//! Scripts for bad-input tests: the first connection reads requests and plays a list
//! of steps (answer, raw bytes, wait, close), turned into a hook of the fake.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use super::action::{Action, Out};
use super::wire::Request;

type Reply = Box<dyn FnOnce(&Request) -> Vec<u8> + Send>;

/// One step of a script.
pub enum Step {
    /// Read one request, then send what the closure builds from it.
    Reply(Reply),
    /// Read one request and send nothing.
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
    pub fn reply(f: impl FnOnce(&Request) -> Vec<u8> + Send + 'static) -> Step {
        Step::Reply(Box::new(f))
    }
}

/// What to do on one request: the answer, then what follows it up to the next read.
struct Turn {
    reply: Option<Reply>,
    then: Vec<Out>,
}

/// The hook playing `steps` on connection 0 (every other connection is closed); the
/// connection is closed after the last step.
pub(super) fn hook(steps: Vec<Step>) -> impl Fn(&Request) -> Action + Send + Sync {
    let mut turns: VecDeque<Turn> = VecDeque::new();
    for step in steps {
        match step {
            Step::Reply(f) => turns.push_back(Turn { reply: Some(f), then: Vec::new() }),
            Step::Read => turns.push_back(Turn { reply: None, then: Vec::new() }),
            other => {
                let out = match other {
                    Step::Raw(b) => Out::Bytes(b),
                    Step::Sleep(d) => Out::Sleep(d),
                    _ => Out::Close,
                };
                turns.back_mut().expect("a script starts by reading a request").then.push(out);
            }
        }
    }
    // The connection closes when the script ends, as a script is the whole conversation.
    if let Some(last) = turns.back_mut() {
        if !matches!(last.then.last(), Some(Out::Close)) {
            last.then.push(Out::Close);
        }
    }
    let turns = Mutex::new(turns);
    move |req: &Request| {
        if req.connection != 0 {
            return Action::Close;
        }
        let Some(turn) = turns.lock().ok().and_then(|mut t| t.pop_front()) else {
            return Action::Close;
        };
        let mut outs: Vec<Out> = turn.reply.map(|f| Out::Bytes(f(req))).into_iter().collect();
        outs.extend(turn.then);
        Action::Play(outs)
    }
}
