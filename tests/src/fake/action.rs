//! What the fake's hook may do with a request.

use std::time::Duration;

/// What the fake does with one request.
#[derive(Debug)]
pub enum Action {
    /// The in-memory broker answers, and this function rewrites its response frame
    /// (length prefix included) before it is sent: a hostile or broken broker.
    Mutate(Mutation),
    /// The default: the in-memory broker answers (or, for a proxy, the real one).
    Pass,
    /// Send these bytes (a whole response frame, or anything at all) instead.
    Reply(Vec<u8>),
    /// Send these bytes, wait, send more, close…: played in order.
    Play(Vec<Out>),
    /// Send nothing and go on reading.
    Drop,
    /// Wait, then answer as [`Action::Pass`] would.
    Delay(Duration),
    /// Stop reading and answering this connection (it stays open until the fake is dropped).
    Stall,
    /// Close the connection.
    Close,
}

/// One thing [`Action::Play`] does.
#[derive(Debug)]
pub enum Out {
    /// Send these bytes.
    Bytes(Vec<u8>),
    /// Wait.
    Sleep(Duration),
    /// Close the connection.
    Close,
}

/// A rewrite of a response frame, for [`Action::Mutate`].
pub struct Mutation(pub Box<dyn FnOnce(Vec<u8>) -> Vec<u8> + Send>);

impl std::fmt::Debug for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mutation")
    }
}
