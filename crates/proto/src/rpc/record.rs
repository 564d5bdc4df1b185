//! Record marking (RFC 5531 §11): a record is one or more fragments, each with a
//! 4-byte header whose top bit marks the last fragment.

const LAST_FRAGMENT: u32 = 0x8000_0000;

/// Why a byte stream was not a valid sequence of records; the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record of {0} bytes exceeds the maximum record size")]
    TooLarge(usize),
    #[error("record has more than {0} fragments")]
    TooManyFragments(usize),
}

/// A gathered record at least this long is handed out as its own buffer
/// ([`Record::Gathered`]), so that the request may keep parts of it (a WRITE's data)
/// without a copy; a shorter one stays in the assembler's buffer for reuse.
pub const OWN_BUFFER_FROM: usize = 64 * 1024;
/// The gathering buffer is kept for the next record up to this capacity.
const KEEP_CAPACITY: usize = 256 * 1024;

/// One complete record.
#[derive(Debug)]
pub enum Record<'a> {
    /// Borrowed from the input or the assembler: valid during the callback only.
    InPlace(&'a [u8]),
    /// A large record gathered into a buffer of its own, which the callee owns.
    Gathered(Vec<u8>),
}

impl Record<'_> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Record::InPlace(b) => b,
            Record::Gathered(v) => v,
        }
    }
}

/// Reassembles records from a TCP byte stream.
///
/// A record that arrives whole in one input slice (the common case: one fragment, one
/// receive buffer) is handed out as a sub-slice of the input, with no copy; anything else
/// is gathered once into an internal buffer that is bounded by `max_record`.
#[derive(Debug)]
pub struct RecordAssembler {
    max_record: usize,
    max_fragments: usize,
    /// Bytes of a partial fragment header (a header split across inputs).
    header: [u8; 4],
    header_len: usize,
    /// Bytes still expected in the current fragment, and whether it is the last one.
    frag_left: usize,
    frag_last: bool,
    in_fragment: bool,
    fragments: usize,
    gathered: Vec<u8>,
    /// While the buffer is lent ([`RecordAssembler::take_direct`]): its length then.
    lent: Option<usize>,
    /// Where the buffer of a large record comes from (capacity at least the argument).
    alloc: fn(usize) -> Vec<u8>,
}

impl RecordAssembler {
    pub fn new(max_record: usize) -> Self {
        Self {
            max_record,
            max_fragments: 1024,
            header: [0; 4],
            header_len: 0,
            frag_left: 0,
            frag_last: false,
            in_fragment: false,
            fragments: 0,
            gathered: Vec::new(),
            lent: None,
            alloc: Vec::with_capacity,
        }
    }

    /// Take the buffers of large records (those handed out as [`Record::Gathered`])
    /// from `alloc` instead of the allocator, e.g. a pool the caller returns them to.
    pub fn with_alloc(mut self, alloc: fn(usize) -> Vec<u8>) -> Self {
        self.alloc = alloc;
        self
    }

    /// True when no partial record is buffered (a close now loses nothing).
    pub fn is_idle(&self) -> bool {
        !self.in_fragment && self.header_len == 0 && self.gathered.is_empty()
    }

    /// Bytes held for incomplete records.
    pub fn buffered(&self) -> usize {
        self.gathered.capacity()
    }

    /// Bytes still to come in the current fragment, when that is at least `min`: the
    /// caller may receive them straight into the record's buffer
    /// ([`take_direct`](Self::take_direct)) instead of feeding them.
    pub fn direct_want(&self, min: usize) -> Option<usize> {
        (self.lent.is_none() && self.in_fragment && self.frag_left >= min.max(1))
            .then_some(self.frag_left)
    }

    /// Lend the record's buffer for receiving the rest of the current fragment into its
    /// spare capacity (at least [`direct_want`](Self::direct_want) bytes of it). Give it
    /// back with [`return_direct`](Self::return_direct), grown by what was received; the
    /// assembler takes no input meanwhile.
    pub fn take_direct(&mut self, min: usize) -> Option<(Vec<u8>, usize)> {
        let want = self.direct_want(min)?;
        let mut buf = std::mem::take(&mut self.gathered);
        buf.reserve(want);
        self.lent = Some(buf.len());
        Some((buf, want))
    }

    /// Take back the buffer lent by [`take_direct`](Self::take_direct) with the bytes
    /// received into it appended (at most what was wanted; more is a caller bug and is
    /// refused as a too-large record). A record they complete goes to `on_record`, as
    /// in [`feed_records`](Self::feed_records).
    pub fn return_direct(
        &mut self,
        buf: Vec<u8>,
        mut on_record: impl FnMut(Record<'_>) -> bool,
    ) -> Result<(), RecordError> {
        let before = self.lent.take().unwrap_or(0);
        let got = buf.len().saturating_sub(before);
        self.gathered = buf;
        if got > self.frag_left || self.gathered.len() < before {
            return Err(RecordError::TooLarge(self.gathered.len()));
        }
        self.frag_left -= got;
        if self.frag_left == 0 {
            self.in_fragment = false;
            if self.frag_last {
                self.fragments = 0;
                self.hand_out(&mut on_record);
            }
        }
        Ok(())
    }

    /// The gathered record is complete: hand it to `on_record` (as its own buffer when
    /// large) and get ready for the next one.
    fn hand_out(&mut self, on_record: &mut impl FnMut(Record<'_>) -> bool) -> bool {
        if self.gathered.len() >= OWN_BUFFER_FROM {
            on_record(Record::Gathered(std::mem::take(&mut self.gathered)))
        } else {
            let go = on_record(Record::InPlace(&self.gathered));
            // Keep a modest buffer around for the next record.
            if self.gathered.capacity() <= KEEP_CAPACITY {
                self.gathered.clear();
            } else {
                self.gathered = Vec::new();
            }
            go
        }
    }

    /// Feed stream bytes; `on_record` is called once per complete record, in order.
    /// Returning `false` from `on_record` stops processing (the rest of the input is dropped).
    pub fn feed(
        &mut self,
        input: &[u8],
        mut on_record: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), RecordError> {
        self.feed_records(input, |r| on_record(r.bytes()))
    }

    /// As [`feed`](Self::feed), but a large gathered record (at least
    /// [`OWN_BUFFER_FROM`] bytes) is handed over as its own buffer.
    pub fn feed_records(
        &mut self,
        input: &[u8],
        on_record: impl FnMut(Record<'_>) -> bool,
    ) -> Result<(), RecordError> {
        self.feed_records_rest(input, on_record).map(|_| ())
    }

    /// As [`feed_records`](Self::feed_records), returning how many bytes at the end of
    /// `input` were left unread because `on_record` stopped (the stream changes hands
    /// there: after the reply to an AUTH_TLS probe, TLS).
    pub fn feed_records_rest(
        &mut self,
        mut input: &[u8],
        mut on_record: impl FnMut(Record<'_>) -> bool,
    ) -> Result<usize, RecordError> {
        debug_assert!(self.lent.is_none(), "input fed while the buffer is lent");
        while !input.is_empty() {
            if !self.in_fragment {
                // Fast path: a whole single-fragment record at the start of the input.
                if self.header_len == 0 && self.gathered.is_empty() && input.len() >= 4 {
                    let h = u32::from_be_bytes([input[0], input[1], input[2], input[3]]);
                    let len = (h & !LAST_FRAGMENT) as usize;
                    if len > self.max_record {
                        return Err(RecordError::TooLarge(len));
                    }
                    if h & LAST_FRAGMENT != 0 && input.len() >= 4 + len {
                        let keep_going = on_record(Record::InPlace(&input[4..4 + len]));
                        input = &input[4 + len..];
                        if !keep_going {
                            return Ok(input.len());
                        }
                        continue;
                    }
                }
                let need = 4 - self.header_len;
                let take = need.min(input.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&input[..take]);
                self.header_len += take;
                input = &input[take..];
                if self.header_len < 4 {
                    return Ok(0);
                }
                self.header_len = 0;
                let h = u32::from_be_bytes(self.header);
                self.frag_left = (h & !LAST_FRAGMENT) as usize;
                self.frag_last = h & LAST_FRAGMENT != 0;
                self.fragments += 1;
                if self.fragments > self.max_fragments {
                    return Err(RecordError::TooManyFragments(self.max_fragments));
                }
                let total = self.gathered.len() + self.frag_left;
                if total > self.max_record {
                    return Err(RecordError::TooLarge(total));
                }
                // Reserve the whole fragment (at most `max_record`, checked above) so a
                // large record is gathered with one copy instead of growing by doubling
                // (which copied each 1 MiB WRITE twice). The pages of a claimed but
                // unsent fragment are reserved, not touched, so they are not resident.
                if self.gathered.is_empty() && self.frag_left >= OWN_BUFFER_FROM {
                    // A large record's buffer leaves with it: take one from `alloc`.
                    let mut b = (self.alloc)(self.frag_left);
                    b.clear();
                    self.gathered = b;
                }
                self.gathered.reserve(self.frag_left);
                self.in_fragment = true;
            }
            let take = self.frag_left.min(input.len());
            self.gathered.extend_from_slice(&input[..take]);
            self.frag_left -= take;
            input = &input[take..];
            if self.frag_left > 0 {
                return Ok(0);
            }
            self.in_fragment = false;
            if self.frag_last {
                self.fragments = 0;
                if !self.hand_out(&mut on_record) {
                    return Ok(input.len());
                }
            }
        }
        Ok(0)
    }
}

/// Prefix `payload` with a single last-fragment record mark.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 4);
    v.extend_from_slice(&(payload.len() as u32 | LAST_FRAGMENT).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Record mark for a single-fragment record of `len` bytes.
pub fn mark(len: usize) -> [u8; 4] {
    (len as u32 | LAST_FRAGMENT).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(asm: &mut RecordAssembler, input: &[u8]) -> Result<Vec<Vec<u8>>, RecordError> {
        let mut out = Vec::new();
        asm.feed(input, |r| {
            out.push(r.to_vec());
            true
        })?;
        Ok(out)
    }

    #[test]
    fn a_large_gathered_record_is_handed_over_and_a_small_one_stays() {
        // Each record arrives in two pieces, so both are gathered.
        for (len, owned) in [
            (100, false),
            (OWN_BUFFER_FROM - 1, false),
            (OWN_BUFFER_FROM, true),
        ] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let input = frame(&payload);
            let mut a = RecordAssembler::new(1 << 20);
            let mut seen = Vec::new();
            for part in [&input[..len / 2], &input[len / 2..]] {
                a.feed_records(part, |r| {
                    seen.push((matches!(r, Record::Gathered(_)), r.bytes().to_vec()));
                    true
                })
                .unwrap();
            }
            assert_eq!(seen, vec![(owned, payload)], "record of {len} bytes");
            assert!(a.is_idle());
            // A small record's buffer is kept for the next one; a handed-over one is not.
            assert_eq!(a.buffered() == 0, owned, "record of {len} bytes");
        }
    }

    #[test]
    fn the_rest_of_a_large_fragment_is_received_into_the_records_buffer() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let input = frame(&payload);
        let mut a = RecordAssembler::new(1 << 20);
        let mut seen = Vec::new();
        a.feed_records(&input[..1000], |_| panic!("not complete yet"))
            .unwrap();
        assert_eq!(a.direct_want(1 << 20), None, "less than asked for");
        assert_eq!(a.direct_want(4096), Some(input.len() - 1000));
        // Received in two pieces straight into the lent buffer.
        let mut at = 1000;
        for piece in [50_000, input.len() - 51_000] {
            let (mut buf, want) = a.take_direct(4096).unwrap();
            assert_eq!(want, input.len() - at);
            assert!(buf.capacity() - buf.len() >= want);
            buf.extend_from_slice(&input[at..at + piece]);
            at += piece;
            a.return_direct(buf, |r| {
                seen.push((matches!(r, Record::Gathered(_)), r.bytes().to_vec()));
                true
            })
            .unwrap();
        }
        assert_eq!(seen, vec![(true, payload)]);
        assert!(a.is_idle());
        assert_eq!(a.direct_want(1), None);
    }

    #[test]
    fn more_than_the_fragment_back_from_a_lent_buffer_is_refused() {
        let input = frame(&[1u8; 10_000]);
        let mut a = RecordAssembler::new(1 << 20);
        a.feed_records(&input[..100], |_| true).unwrap();
        let (mut buf, want) = a.take_direct(1).unwrap();
        buf.extend(std::iter::repeat_n(0, want + 1));
        assert!(a.return_direct(buf, |_| true).is_err());
    }

    #[test]
    fn whole_records_in_one_buffer() {
        let mut input = frame(b"abcd");
        input.extend(frame(b"efgh1234"));
        let mut a = RecordAssembler::new(1024);
        let recs = collect(&mut a, &input).unwrap();
        assert_eq!(recs, vec![b"abcd".to_vec(), b"efgh1234".to_vec()]);
        assert!(a.is_idle());
    }

    #[test]
    fn byte_by_byte_and_multi_fragment() {
        let mut input = Vec::new();
        input.extend_from_slice(&3u32.to_be_bytes());
        input.extend_from_slice(b"abc");
        input.extend_from_slice(&0u32.to_be_bytes()); // empty middle fragment
        input.extend_from_slice(&(2u32 | LAST_FRAGMENT).to_be_bytes());
        input.extend_from_slice(b"de");
        let mut a = RecordAssembler::new(1024);
        let mut recs = Vec::new();
        for b in &input {
            recs.extend(collect(&mut a, std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(recs, vec![b"abcde".to_vec()]);
        assert!(a.is_idle());
    }

    #[test]
    fn oversize_record_rejected_before_buffering() {
        let mut a = RecordAssembler::new(1024);
        let input = (0x7fff_ffffu32 | LAST_FRAGMENT).to_be_bytes();
        assert_eq!(
            collect(&mut a, &input),
            Err(RecordError::TooLarge(0x7fff_ffff))
        );
        // Fragments that add up past the limit are refused too.
        let mut a = RecordAssembler::new(8);
        let mut input = 6u32.to_be_bytes().to_vec();
        input.extend_from_slice(b"123456");
        input.extend_from_slice(&(6u32 | LAST_FRAGMENT).to_be_bytes());
        assert_eq!(collect(&mut a, &input), Err(RecordError::TooLarge(12)));
    }

    #[test]
    fn endless_fragments_rejected() {
        let mut a = RecordAssembler::new(1 << 20);
        let input: Vec<u8> = std::iter::repeat_n(0u32.to_be_bytes(), 2000)
            .flatten()
            .collect();
        assert_eq!(
            collect(&mut a, &input),
            Err(RecordError::TooManyFragments(1024))
        );
    }
}
