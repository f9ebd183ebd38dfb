//! Property tests of the snapshot loader on damaged copies of a real
//! fixture: any truncation or byte mutation loads or fails with a
//! `LoadError` whose message is one line naming the origin; nothing panics.

use proptest::prelude::*;
use turbowish_snapshot::Snapshot;

fn fixture_bytes() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/service.json");
    std::fs::read(path).unwrap()
}

fn check(bytes: &[u8]) {
    match Snapshot::from_slice(bytes, "damaged.json") {
        Ok(snap) => assert!(turbowish_snapshot::SUPPORTED_VERSIONS.contains(&snap.format_version)),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("damaged.json"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn truncation_never_panics(cut in 0.0f64..1.0) {
        let bytes = fixture_bytes();
        let end = (bytes.len() as f64 * cut) as usize;
        check(&bytes[..end]);
        // A prefix without the closing brace is never a whole snapshot.
        let closing = bytes.iter().rposition(|&b| b == b'}').unwrap();
        if end <= closing {
            prop_assert!(Snapshot::from_slice(&bytes[..end], "cut.json").is_err());
        }
    }

    #[test]
    fn mutation_never_panics(
        edits in prop::collection::vec((0.0f64..1.0, any::<u8>()), 1..8),
    ) {
        let mut bytes = fixture_bytes();
        for (at, byte) in edits {
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] = byte;
        }
        check(&bytes);
    }

    #[test]
    fn mutation_to_json_tokens_never_panics(
        edits in prop::collection::vec((0.0f64..1.0, prop::sample::select(b"{}[]\":,0-9en. ".to_vec())), 1..8),
    ) {
        let mut bytes = fixture_bytes();
        for (at, byte) in edits {
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] = byte;
        }
        check(&bytes);
    }
}
