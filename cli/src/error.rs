//! The CLI's errors, and the exit code of each.

use ferrokafka_client::ClientError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The client failed (a broker, the network, a configuration key).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// An argument that only turned out to be wrong once the command ran.
    #[error("{0}")]
    Usage(String),
    /// Reading the input or writing the output failed.
    #[error("{what}: {source}")]
    Io {
        /// `stdin`, `stdout` or `-l` (the input file).
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// 1 runtime error, 2 usage error, 3 configuration error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Client(e) if e.is_config() => 3,
            CliError::Client(_) | CliError::Io { .. } => 1,
        }
    }
}

/// Results of the CLI's commands.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// A failed write to stdout (or read of stdin, for -P).
pub fn io_err(source: std::io::Error) -> CliError {
    CliError::Io { what: "stdout/stdin", source }
}
