//! Decimal numbers into byte buffers without allocating (status codes,
//! Content-Length values).

/// Appends `n` in decimal.
pub fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0u64, 7, 10, 404, 65536, u64::MAX] {
            let mut v = Vec::new();
            push_num(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
    }
}
