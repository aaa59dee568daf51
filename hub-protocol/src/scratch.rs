//! Encoding through one reused buffer per thread: a message is written there, then copied out
//! at its exact size (a message larger than the buffer keeps takes the buffer itself).
//!
//! Encoding into a new `Vec` cost two allocations per message: the vector, and the shared
//! header `Bytes` adds to a vector whose length is not its capacity. One exact copy costs one
//! allocation (the echo benchmark's callgrind count per call, JSON and MessagePack).

use std::cell::RefCell;

use bytes::Bytes;

use crate::EncodeError;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most a thread keeps between messages (a larger message's room is let go).
const KEEP: usize = 16 * 1024;

/// Runs `write` on an empty buffer and returns what it wrote.
pub(crate) fn encode_with(
    mut write: impl FnMut(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<Bytes, EncodeError> {
    let reused = SCRATCH.try_with(|cell| {
        // Busy when a value's `Serialize` encodes a message itself: that one gets its own.
        let mut out = cell.try_borrow_mut().ok()?;
        out.clear();
        let result = write(&mut out).map(|()| {
            if out.capacity() > KEEP {
                // A large message takes the buffer with it (no copy); the thread starts afresh.
                Bytes::from(std::mem::take(&mut *out))
            } else {
                Bytes::copy_from_slice(&out)
            }
        });
        // A large message that failed leaves its room behind: let go of it too.
        if out.capacity() > KEEP {
            *out = Vec::new();
        }
        Some(result)
    });
    if let Ok(Some(result)) = reused {
        return result;
    }
    // The thread's buffer is busy, or gone (the thread is ending).
    let mut out = Vec::with_capacity(128);
    write(&mut out)?;
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_encode_gets_its_own_buffer() {
        let outer = encode_with(|out| {
            out.extend_from_slice(b"outer ");
            let inner = encode_with(|out| {
                out.extend_from_slice(b"inner");
                Ok(())
            })
            .unwrap();
            out.extend_from_slice(&inner);
            Ok(())
        })
        .unwrap();
        assert_eq!(&outer[..], b"outer inner");
    }

    #[test]
    fn a_large_message_is_not_kept() {
        let big = encode_with(|out| {
            out.resize(KEEP * 4, b'x');
            Ok(())
        })
        .unwrap();
        assert_eq!(big.len(), KEEP * 4);
        SCRATCH.with(|cell| assert!(cell.borrow().capacity() <= KEEP));
        let failed = encode_with(|out| {
            out.push(b'x');
            Err(EncodeError("no".into()))
        });
        assert!(failed.is_err());
        let small = encode_with(|out| {
            out.push(b'y');
            Ok(())
        });
        assert_eq!(&small.unwrap()[..], b"y");
    }
}
