//! Finds where a chunked message body ends (RFC 9112 7.1) without decoding
//! it: the fast path forwards chunked bodies byte for byte and only needs to
//! know when the message is over. Sizes are checked (hex, no overflow), and
//! anything malformed is an error rather than a guess.

/// Where the scanner is in the chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading the hex size of the next chunk.
    Size,
    /// In a chunk extension, up to the line end.
    Extension,
    /// Expecting the LF after the size line's CR.
    SizeLf,
    /// Inside chunk data: this many bytes left.
    Data(u64),
    /// Expecting CR after chunk data.
    DataCr,
    /// Expecting LF after chunk data.
    DataLf,
    /// After the last chunk: at the start of a trailer line.
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// Expecting LF after a trailer line's CR.
    TrailerLf,
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// The body is not valid chunked encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct Malformed;

/// Scans a chunked body as it streams by.
#[derive(Debug, Clone)]
pub struct ChunkScanner {
    state: State,
    size: u64,
    digits: u32,
    last: bool,
}

impl Default for ChunkScanner {
    fn default() -> Self {
        ChunkScanner { state: State::Size, size: 0, digits: 0, last: false }
    }
}

impl ChunkScanner {
    /// Whether the whole body has been seen.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes `bytes`; returns how many belong to the body (all of them
    /// unless the body ends inside `bytes`).
    pub fn advance(&mut self, bytes: &[u8]) -> Result<usize, Malformed> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                State::Done => return Ok(i),
                State::Data(n) => {
                    let take = (n.min((bytes.len() - i) as u64)) as usize;
                    i += take;
                    let left = n - take as u64;
                    self.state = if left == 0 { State::DataCr } else { State::Data(left) };
                    continue;
                }
                State::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = (b as char).to_digit(16).ok_or(Malformed)? as u64;
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err(Malformed);
                        }
                        self.size = self.size * 16 + d;
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => self.state = State::Extension,
                    b'\r' if self.digits > 0 => self.state = State::SizeLf,
                    _ => return Err(Malformed),
                },
                State::Extension => match b {
                    b'\r' => self.state = State::SizeLf,
                    b'\n' => return Err(Malformed),
                    _ => {}
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(Malformed);
                    }
                    if self.size == 0 {
                        self.last = true;
                        self.state = State::TrailerStart;
                    } else {
                        self.state = State::Data(self.size);
                    }
                    self.size = 0;
                    self.digits = 0;
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(Malformed);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(Malformed);
                    }
                    self.state = State::Size;
                }
                State::TrailerStart => match b {
                    b'\r' => self.state = State::EndLf,
                    b'\n' => return Err(Malformed),
                    _ => self.state = State::Trailer,
                },
                State::Trailer => match b {
                    b'\r' => self.state = State::TrailerLf,
                    b'\n' => return Err(Malformed),
                    _ => {}
                },
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(Malformed);
                    }
                    self.state = State::TrailerStart;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(Malformed);
                    }
                    self.state = State::Done;
                    return Ok(i + 1);
                }
            }
            i += 1;
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(parts: &[&[u8]]) -> Result<(bool, usize), Malformed> {
        let mut s = ChunkScanner::default();
        let mut used = 0;
        for p in parts {
            used += s.advance(p)?;
            if s.done() {
                break;
            }
        }
        Ok((s.done(), used))
    }

    #[test]
    fn finds_the_end_whatever_the_split() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let end = body.len() - 4;
        for cut in 0..body.len() {
            let (done, used) = scan_all(&[&body[..cut], &body[cut..]]).expect("valid");
            assert!(done, "cut at {cut}");
            assert_eq!(used, end, "cut at {cut}");
        }
        let mut s = ChunkScanner::default();
        for (i, b) in body.iter().enumerate() {
            let n = s.advance(std::slice::from_ref(b)).expect("valid");
            if i < end {
                assert_eq!(n, 1);
            } else {
                assert_eq!(n, 0, "bytes after the end are not the body's");
            }
        }
    }

    #[test]
    fn an_empty_body_is_one_zero_chunk() {
        assert_eq!(scan_all(&[b"0\r\n\r\n"]).expect("valid"), (true, 5));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [&b"x\r\n"[..], b"5\nhello", b"5\r\nhelloX\r\n", b"\r\n", b"fffffffffffffffff\r\n", b"0\r\nbad\n"] {
            assert!(scan_all(&[bad]).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        assert_eq!(scan_all(&[b"5\r\nhel"]).expect("valid so far"), (false, 6));
    }
}
