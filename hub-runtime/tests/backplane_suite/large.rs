//! Large messages cross servers intact: string arguments of about 9 KB and 1.2 MB (multi-byte
//! UTF-8 included), to everyone and to one connection, read by JSON and MessagePack clients
//! and compared byte for byte.

use serde_json::json;

use crate::fleet::{Fleet, Kind};
use crate::hub::{send, To};
use crate::peer::Peer;

/// About `bytes` bytes of text: ASCII, escapes JSON must write, and 2-, 3- and 4-byte characters.
fn payload(bytes: usize, seed: u32) -> String {
    let pieces = ["abc", "\"quoted\\", "é", "€", "😀", "\n\t", "0123456789", "∑ñ"];
    let mut out = String::with_capacity(bytes + 16);
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    while out.len() < bytes {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        out.push_str(pieces[state as usize % pieces.len()]);
    }
    out
}

/// `peer`'s next `Receive` must be `expected`, exactly.
async fn expect_exact(peer: &mut Peer, expected: &str, what: &str) {
    let got = peer.received().await;
    assert!(
        got == expected,
        "{what}: a {} client got {} bytes, {} sent (first difference at byte {:?})",
        peer.protocol(),
        got.len(),
        expected.len(),
        got.bytes().zip(expected.bytes()).position(|(a, b)| a != b)
    );
}

pub async fn large_messages_cross_servers_intact<K: Kind>() {
    let Some(fleet) = Fleet::<K>::start().await else { return };
    let mut a = fleet.json(0, None).await;
    // Receivers on B and C, JSON and MessagePack.
    let mut receivers = vec![
        fleet.json(1, None).await,
        fleet.msgpack(1).await,
        fleet.json(2, None).await,
        fleet.msgpack(2).await,
    ];
    for (size, seed) in [(9 * 1024, 1), (1_200 * 1024, 2)] {
        let text = payload(size, seed);
        let what = format!("{size} bytes");
        // To everyone, from A's handle.
        send(&fleet.server(0).handle.clients, &To::All, text.clone())
            .await
            .unwrap();
        expect_exact(&mut a, &text, &format!("{what} to all, on A")).await;
        for peer in &mut receivers {
            expect_exact(peer, &text, &format!("{what} to all")).await;
        }
        // To one connection each, from A's handle.
        for peer in &mut receivers {
            let to = To::Client(peer.id.clone());
            send(&fleet.server(0).handle.clients, &to, text.clone()).await.unwrap();
            expect_exact(peer, &text, &format!("{what} to one connection")).await;
        }
    }
    // From a hub method (the client uploads it: within the default 32 KiB message size).
    let text = payload(9 * 1024, 3);
    a.call("SendTo", vec![json!(To::All), json!(text)]).await;
    expect_exact(&mut a, &text, "9 KB from a hub method, on A").await;
    for peer in &mut receivers {
        expect_exact(peer, &text, "9 KB from a hub method").await;
    }
}
