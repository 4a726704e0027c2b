//! The one thing an application needs from Redis: send commands as one
//! pipeline and get one reply per command back. The guest implements it on
//! its outbound stream, the host on a TCP socket.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use resp::Reply;

/// Why the storage tier could not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Redis cannot be reached, or the connection broke.
    Unavailable(String),
    /// Redis answered a command with an error.
    Refused {
        /// The command.
        command: String,
        /// Redis's message.
        message: String,
    },
    /// The bytes from Redis are not RESP, or a reply has the wrong type.
    Protocol(String),
    /// Data in Redis does not decode: a chunk or an event written by
    /// something other than this version of the loader and apps.
    Data(String),
    /// The data set is not there: `twinkle data load` has not run.
    NotLoaded(String),
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::Unavailable(m) => write!(f, "Redis is unavailable: {m}"),
            StoreError::Refused { command, message } => write!(f, "Redis refused {command}: {message}"),
            StoreError::Protocol(m) => write!(f, "unexpected answer from Redis: {m}"),
            StoreError::Data(m) => write!(f, "bad data in Redis: {m}"),
            StoreError::NotLoaded(m) => write!(f, "no data set in Redis: {m}"),
        }
    }
}

/// A connection to the storage tier.
pub trait Store {
    /// Sends `cmds` (each a command and its arguments) as one pipeline and
    /// returns their replies in order; error replies come back as
    /// [`Reply::Error`] (see [`check`]).
    fn exec(&mut self, cmds: &[&[&[u8]]]) -> Result<Vec<Reply>, StoreError>;
}

/// Turns an error reply into [`StoreError::Refused`] naming `cmd`.
pub fn check(reply: Reply, cmd: &[&[u8]]) -> Result<Reply, StoreError> {
    match reply {
        Reply::Error(message) => Err(StoreError::Refused { command: name(cmd), message }),
        r => Ok(r),
    }
}

/// A command's name, for messages.
pub fn name(cmd: &[&[u8]]) -> String {
    cmd.first().map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default()
}

/// The integer of `reply` to `cmd`.
pub fn int(reply: Reply, cmd: &[&[u8]]) -> Result<i64, StoreError> {
    let r = check(reply, cmd)?;
    r.as_int().ok_or_else(|| StoreError::Protocol(format!("{} answered {r:?}, not an integer", name(cmd))))
}

/// The bulk strings of an array `reply` to `cmd`.
pub fn array(reply: Reply, cmd: &[&[u8]]) -> Result<Vec<Vec<u8>>, StoreError> {
    match check(reply, cmd)? {
        Reply::Array(Some(items)) => items
            .into_iter()
            .map(|i| match i {
                Reply::Bulk(Some(b)) => Ok(b),
                other => Err(StoreError::Protocol(format!("{} answered an array holding {other:?}", name(cmd)))),
            })
            .collect(),
        Reply::Array(None) => Ok(Vec::new()),
        other => Err(StoreError::Protocol(format!("{} answered {other:?}, not an array", name(cmd)))),
    }
}

/// The bulk string of `reply` to `cmd` (`None` for a missing key).
pub fn bulk(reply: Reply, cmd: &[&[u8]]) -> Result<Option<Vec<u8>>, StoreError> {
    match check(reply, cmd)? {
        Reply::Bulk(b) => Ok(b),
        other => Err(StoreError::Protocol(format!("{} answered {other:?}, not a string", name(cmd)))),
    }
}
