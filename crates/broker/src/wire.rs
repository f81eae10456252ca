//! Kafka's primitive encodings: the non-flexible ones (big-endian integers,
//! int16 length strings, int32 length bytes and arrays) and the flexible
//! versions' (unsigned varints, compact strings and arrays, tagged
//! fields), used by the consumer protocol, `__consumer_offsets` and
//! `__transaction_state` records.

/// Appends Kafka primitives to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
    pub fn i8(&mut self, v: i8) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn string(&mut self, s: &str) -> &mut Self {
        let len = s.len().min(i16::MAX as usize);
        self.i16(len as i16);
        self.buf.extend_from_slice(&s.as_bytes()[..len]);
        self
    }
    pub fn nullable_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.i32(b.len() as i32);
        self.buf.extend_from_slice(b);
        self
    }
    pub fn nullable_bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        match b {
            Some(b) => self.bytes(b),
            None => self.i32(-1),
        }
    }
    pub fn array_len(&mut self, n: usize) -> &mut Self {
        self.i32(n as i32)
    }
    /// An unsigned varint (flexible versions' lengths and tags).
    pub fn uvarint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
        self
    }
    /// A compact array's length (`None`: a null array).
    pub fn compact_array_len(&mut self, n: Option<usize>) -> &mut Self {
        self.uvarint(n.map_or(0, |n| n as u64 + 1))
    }
    pub fn compact_string(&mut self, s: &str) -> &mut Self {
        self.compact_array_len(Some(s.len()));
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
    /// Tagged fields: each (tag, bytes), in tag order.
    pub fn tagged_fields(&mut self, fields: &[(u64, &[u8])]) -> &mut Self {
        self.uvarint(fields.len() as u64);
        for (tag, bytes) in fields {
            self.uvarint(*tag).uvarint(bytes.len() as u64);
            self.buf.extend_from_slice(bytes);
        }
        self
    }
}

/// Reads Kafka primitives; every method fails cleanly on short or bad input.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

/// What is wrong with the bytes.
pub type WireResult<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    fn take(&mut self, n: usize) -> WireResult<&'a [u8]> {
        if self.buf.len() < n {
            return Err(format!("needed {n} bytes, {} left", self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub fn i8(&mut self) -> WireResult<i8> {
        Ok(i8::from_be_bytes([self.take(1)?[0]]))
    }
    pub fn i16(&mut self) -> WireResult<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    pub fn i32(&mut self) -> WireResult<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn i64(&mut self) -> WireResult<i64> {
        let b = self.take(8)?;
        let mut x = [0u8; 8];
        x.copy_from_slice(b);
        Ok(i64::from_be_bytes(x))
    }
    pub fn nullable_string(&mut self) -> WireResult<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| "string is not UTF-8".to_string())
    }
    pub fn string(&mut self) -> WireResult<String> {
        self.nullable_string()?
            .ok_or_else(|| "null where a string is required".to_string())
    }
    pub fn nullable_bytes(&mut self) -> WireResult<Option<Vec<u8>>> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(len as usize)?.to_vec()))
    }
    pub fn bytes(&mut self) -> WireResult<Vec<u8>> {
        Ok(self.nullable_bytes()?.unwrap_or_default())
    }
    /// An array length; a null array (-1) reads as empty. Bounded by the
    /// bytes left (each element takes at least `min_element` bytes).
    pub fn array_len(&mut self, min_element: usize) -> WireResult<usize> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(0);
        }
        let n = n as usize;
        if n.saturating_mul(min_element.max(1)) > self.buf.len() {
            return Err(format!(
                "array of {n} elements cannot fit in {} bytes",
                self.buf.len()
            ));
        }
        Ok(n)
    }
    /// An unsigned varint (flexible versions' lengths and tags).
    pub fn uvarint(&mut self) -> WireResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".to_string())
    }
    /// A compact array's length; a null array reads as empty. Bounded by
    /// the bytes left, as [`Reader::array_len`].
    pub fn compact_array_len(&mut self, min_element: usize) -> WireResult<usize> {
        let n = match self.uvarint()? {
            0 => return Ok(0),
            n => usize::try_from(n - 1).map_err(|e| e.to_string())?,
        };
        if n.saturating_mul(min_element.max(1)) > self.buf.len() {
            return Err(format!(
                "array of {n} elements cannot fit in {} bytes",
                self.buf.len()
            ));
        }
        Ok(n)
    }
    pub fn compact_string(&mut self) -> WireResult<String> {
        let n = match self.uvarint()? {
            0 => return Err("null where a string is required".to_string()),
            n => usize::try_from(n - 1).map_err(|e| e.to_string())?,
        };
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
    /// Reads tagged fields, handing each (tag, bytes) to `f`.
    pub fn tagged_fields(
        &mut self,
        mut f: impl FnMut(u64, &'a [u8]) -> WireResult<()>,
    ) -> WireResult<()> {
        for _ in 0..self.uvarint()? {
            let tag = self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).map_err(|e| e.to_string())?;
            f(tag, self.take(size)?)?;
        }
        Ok(())
    }
}
