//! A 1 GiB file goes into the local store and back out streaming: the process never holds more
//! than a few MiB of it, and the bytes out hash like the bytes in. (Its own test binary, so the peak
//! memory it reads is this test's alone.)

use std::pin::Pin;
use std::task::{Context, Poll};

use drlaas_store::{ContentStore, LocalStore};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

const GIB: u64 = 1 << 30;

/// `len` bytes of a cheap pseudo-random sequence, generated as they are read (never all in memory).
struct Generated {
    left: u64,
    state: u64,
}

impl AsyncRead for Generated {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left) as usize / 8 * 8;
        let n = if n == 0 {
            (buf.remaining() as u64).min(self.left) as usize
        } else {
            n
        };
        let mut out = vec![0u8; n];
        for word in out.chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            word.copy_from_slice(&self.state.to_le_bytes()[..word.len()]);
        }
        self.left -= n as u64;
        buf.put_slice(&out);
        Poll::Ready(Ok(()))
    }
}

/// Peak resident memory of this process so far, in bytes (Linux).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_streams_in_and_out_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let before = peak_rss();

    let mut expected = Sha256::new();
    let mut tee = Generated {
        left: GIB,
        state: 0x9E37_79B9_7F4A_7C15,
    };
    // Hash the same sequence separately: the store gets its own generator.
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut rb = ReadBuf::new(&mut buf);
        let waker = futures::task::noop_waker();
        let _ = Pin::new(&mut tee).poll_read(&mut Context::from_waker(&waker), &mut rb);
        if rb.filled().is_empty() {
            break;
        }
        expected.update(rb.filled());
    }

    let stored = store
        .put_reader(Generated {
            left: GIB,
            state: 0x9E37_79B9_7F4A_7C15,
        })
        .await
        .unwrap();
    assert_eq!(stored.size, GIB);

    let mut actual = Sha256::new();
    let mut read = 0u64;
    let mut chunks = store.get(&stored.cid);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.unwrap();
        read += chunk.len() as u64;
        actual.update(&chunk);
    }
    assert_eq!(read, GIB);
    assert_eq!(actual.finalize(), expected.finalize());

    let grew = peak_rss().saturating_sub(before);
    eprintln!("1 GiB round trip: peak memory grew by {} MiB", grew >> 20);
    assert!(
        grew < 64 << 20,
        "peak memory grew by {} MiB for a 1 GiB round trip",
        grew >> 20
    );
}
