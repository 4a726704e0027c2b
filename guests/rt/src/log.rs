//! Logging to the VMM: format into a fixed buffer (no allocation), one
//! hypercall per line. Use the `info!`, `warn!`, `error!`, `debug!` macros.

use core::fmt::{self, Write};

use guest_abi::LogLevel;

/// A fixed buffer that truncates instead of failing.
pub struct LineBuf {
    buf: [u8; 512],
    len: usize,
}

impl LineBuf {
    /// An empty line.
    pub const fn new() -> Self {
        LineBuf { buf: [0; 512], len: 0 }
    }

    /// The bytes written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Logs a formatted line at `level`.
pub fn log(level: LogLevel, args: fmt::Arguments<'_>) {
    let mut line = LineBuf::new();
    let _ = line.write_fmt(args);
    crate::hypercall::log(level, line.as_bytes());
}

/// Logs at info level.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::log($crate::abi::LogLevel::Info, format_args!($($t)*)) } }
/// Logs at warn level.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::log($crate::abi::LogLevel::Warn, format_args!($($t)*)) } }
/// Logs at error level.
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::log($crate::abi::LogLevel::Error, format_args!($($t)*)) } }
/// Logs at debug level.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::log($crate::abi::LogLevel::Debug, format_args!($($t)*)) } }
