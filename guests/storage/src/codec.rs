//! A compact binary record format: unsigned LEB128 varints, zig-zag signed
//! integers, length-prefixed byte strings. Records are written back to back
//! in a chunk; the [`Reader`] checks every length against what is left, so
//! a corrupted chunk is an error, never an out-of-bounds read.

use alloc::boxed::Box;
use alloc::vec::Vec;

/// Why bytes do not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The record ends early.
    Truncated,
    /// A varint longer than 10 bytes.
    Overlong,
    /// A string that is not UTF-8.
    NotUtf8,
    /// A value out of its field's range (a tag, a length).
    Range,
}

impl core::fmt::Display for CodecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CodecError::Truncated => "record truncated",
            CodecError::Overlong => "integer too long",
            CodecError::NotUtf8 => "text is not UTF-8",
            CodecError::Range => "value out of range",
        })
    }
}

/// Appends fields to a buffer.
#[derive(Default, Debug)]
pub struct Writer {
    /// The encoded bytes.
    pub buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer { buf: Vec::new() }
    }

    /// An unsigned integer.
    pub fn u64(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
        self
    }

    /// A signed integer (zig-zag, so small negatives stay short).
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(((v << 1) ^ (v >> 63)) as u64)
    }

    /// A byte string.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
        self
    }

    /// A text.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Reads fields back, checking every length.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// An unsigned integer.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(CodecError::Truncated)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(CodecError::Overlong);
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Overlong)
    }

    /// An unsigned integer that must fit in a u32.
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.u64()?).map_err(|_| CodecError::Range)
    }

    /// A signed integer.
    pub fn i64(&mut self) -> Result<i64, CodecError> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A byte string, borrowed.
    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = usize::try_from(self.u64()?).map_err(|_| CodecError::Range)?;
        let end = self.pos.checked_add(n).ok_or(CodecError::Range)?;
        let b = self.buf.get(self.pos..end).ok_or(CodecError::Truncated)?;
        self.pos = end;
        Ok(b)
    }

    /// A text, borrowed.
    pub fn str(&mut self) -> Result<&'a str, CodecError> {
        core::str::from_utf8(self.bytes()?).map_err(|_| CodecError::NotUtf8)
    }

    /// A text, owned in the smallest allocation.
    pub fn boxed_str(&mut self) -> Result<Box<str>, CodecError> {
        self.str().map(Box::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut w = Writer::new();
        w.u64(0).u64(127).u64(128).u64(u64::MAX).i64(-1).i64(i64::MIN).i64(300).str("héllo").bytes(&[]);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u64(), Ok(0));
        assert_eq!(r.u64(), Ok(127));
        assert_eq!(r.u64(), Ok(128));
        assert_eq!(r.u64(), Ok(u64::MAX));
        assert_eq!(r.i64(), Ok(-1));
        assert_eq!(r.i64(), Ok(i64::MIN));
        assert_eq!(r.i64(), Ok(300));
        assert_eq!(r.str(), Ok("héllo"));
        assert_eq!(r.bytes(), Ok(&[][..]));
        assert!(r.is_empty());
        assert_eq!(r.u64(), Err(CodecError::Truncated));
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        assert_eq!(Reader::new(&[0xff; 11]).u64(), Err(CodecError::Overlong));
        assert_eq!(Reader::new(&[0x05, b'a']).bytes(), Err(CodecError::Truncated));
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).bytes(),
            Err(CodecError::Range)
        );
        assert_eq!(Reader::new(&[0x02, 0xff, 0xfe]).str(), Err(CodecError::NotUtf8));
        assert_eq!(Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x10]).u32(), Err(CodecError::Range));
    }
}
