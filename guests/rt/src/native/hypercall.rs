//! Native stand-ins for the hypercalls: the same functions, served by the host.

extern crate std;

use std::io::Write;

use guest_abi::LogLevel;

/// Nothing to wait for here: [`crate::net::Net::idle`] polls the sockets.
pub fn wait(_timeout_ns: u64) {}

/// Nothing to notify: operations run in this process.
pub fn notify() {}

/// Reports initialization done on stderr.
pub fn ready() {
    let _ = writeln!(std::io::stderr(), "ready");
}

/// Writes a log line to stderr.
pub fn log(level: LogLevel, msg: &[u8]) {
    let _ = writeln!(std::io::stderr(), "{:?}: {}", level, std::string::String::from_utf8_lossy(msg));
}

/// Exits the process.
pub fn exit(code: u8) -> ! {
    std::process::exit(i32::from(code))
}

/// Reports a panic and exits with 101.
pub fn panic_exit(msg: &[u8]) -> ! {
    let _ = writeln!(std::io::stderr(), "panicked: {}", std::string::String::from_utf8_lossy(msg));
    std::process::exit(101)
}
