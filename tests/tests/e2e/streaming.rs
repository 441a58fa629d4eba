//! Bodies stream both ways: 8 MiB up and 8 MiB down pass through a real
//! `serin` process whose peak memory grows by far less than the body.

use bytes::Bytes;
use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::process::SerinProcess;

const BODY: usize = 8 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_mib_up_and_down_with_bounded_memory() {
    let v = FakeVersion::start("v1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let serin = SerinProcess::spawn(
        dir.path(),
        &format!("[[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"v1\"\nurl = \"{}\"\nweight = 1\n", v.url()),
    );
    let base = format!("http://{}", serin.http);
    let c = TestClient::http1();
    // Warm up: pools, runtime threads, allocator arenas.
    for _ in 0..20 {
        assert_eq!(c.get(&format!("{base}/"), &[]).await.status, 200);
    }
    let before = serin.rss_kib();

    let body: Vec<u8> = (0..BODY).map(|i| (i % 251) as u8).collect();
    let r = c
        .send("POST", &format!("{base}/upload"), &[], Bytes::from(body))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["bytes"], BODY as u64);

    let r = c.get(&format!("{base}/download?bytes={BODY}"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), BODY);
    assert!(
        r.body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == (i % 251) as u8),
        "bytes changed on the way"
    );

    let grew = serin.peak_kib().saturating_sub(before);
    // Buffering either body whole would add 8192 KiB; streaming adds a few
    // hundred KiB of socket and parser buffers.
    assert!(
        grew < 4096,
        "peak memory grew by {grew} KiB for an 8 MiB body each way"
    );
}
