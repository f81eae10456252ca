//! Kafka's variable-length integers: zig-zag encoded, 7 bits per byte, least
//! significant group first (the protobuf encoding). `varint` holds an i32 in at
//! most 5 bytes, `varlong` an i64 in at most 10.

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The buffer ended inside the varint.
    Truncated,
    /// More bytes than the type allows, or a value out of range.
    Overlong,
}

/// Reads an unsigned varint of at most `max_bytes` bytes; returns it and its length.
fn read_unsigned(buf: &[u8], max_bytes: usize) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate() {
        if i == max_bytes {
            return Err(VarintError::Overlong);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= max_bytes {
        Err(VarintError::Overlong)
    } else {
        Err(VarintError::Truncated)
    }
}

/// Reads a zig-zag `varint` (i32). Returns the value and the bytes consumed.
pub fn read_varint(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, len) = read_unsigned(buf, 5)?;
    let raw = u32::try_from(raw).map_err(|_| VarintError::Overlong)?;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), len))
}

/// Reads a zig-zag `varlong` (i64). Returns the value and the bytes consumed.
pub fn read_varlong(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, len) = read_unsigned(buf, 10)?;
    // A 10th byte may only carry the single top bit.
    if len == 10 && buf[9] > 1 {
        return Err(VarintError::Overlong);
    }
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), len))
}

fn write_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a zig-zag `varint` (i32).
pub fn write_varint(out: &mut Vec<u8>, value: i32) {
    write_unsigned(out, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Appends a zig-zag `varlong` (i64).
pub fn write_varlong(out: &mut Vec<u8>, value: i64) {
    write_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Bytes `write_varint(value)` would append.
pub fn varint_len(value: i32) -> usize {
    unsigned_len(u64::from(((value << 1) ^ (value >> 31)) as u32))
}

/// Bytes `write_varlong(value)` would append.
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(((value << 1) ^ (value >> 63)) as u64)
}

fn unsigned_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN, 300, -300] {
            let mut buf = Vec::new();
            write_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v));
            assert_eq!(read_varint(&buf), Ok((v, buf.len())));
        }
        for v in [0, 1, -1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            let mut buf = Vec::new();
            write_varlong(&mut buf, v);
            assert_eq!(buf.len(), varlong_len(v));
            assert_eq!(read_varlong(&buf), Ok((v, buf.len())));
        }
    }

    #[test]
    fn known_encodings() {
        // Values from the protobuf/Kafka documentation.
        let mut buf = Vec::new();
        write_varint(&mut buf, -1);
        assert_eq!(buf, [0x01]);
        buf.clear();
        write_varint(&mut buf, 150);
        assert_eq!(buf, [0xac, 0x02]);
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert_eq!(read_varint(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0xff; 6]), Err(VarintError::Overlong));
        // Five bytes whose value needs more than 32 bits.
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(VarintError::Overlong)
        );
        assert_eq!(read_varlong(&[0xff; 11]), Err(VarintError::Overlong));
        let mut ten = [0xffu8; 10];
        ten[9] = 0x02;
        assert_eq!(read_varlong(&ten), Err(VarintError::Overlong));
    }
}
