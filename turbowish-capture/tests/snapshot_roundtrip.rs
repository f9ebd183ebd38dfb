//! A snapshot survives serialisation unchanged, and every way a file can be
//! wrong gets its own error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use turbowish_snapshot::schema::{ChainEnd, Owner};
use turbowish_snapshot::{LoadError, Snapshot, FORMAT_VERSION, MAX_SNAPSHOT_BYTES};
use turbowish_trace::sync::Mutex;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("turbowish-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A snapshot of a process with two tasks deadlocked on two named locks.
fn deadlocked_snapshot() -> Snapshot {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let snapshot = runtime.block_on(async {
        let a = Arc::new(Mutex::new_named("left", 0u32));
        let b = Arc::new(Mutex::new_named("right", 0u32));
        for (name, first, second) in [("ab", a.clone(), b.clone()), ("ba", b, a)] {
            turbowish_trace::spawn(name, async move {
                let _one = first.lock().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _two = second.lock().await;
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        turbowish_capture::snapshot()
    });
    // The deadlocked tasks are dropped with the runtime.
    drop(runtime);
    snapshot
}

#[test]
fn round_trip_keeps_every_field() {
    let snapshot = deadlocked_snapshot();
    assert_eq!(snapshot.format_version, FORMAT_VERSION);
    assert_eq!(snapshot.process.pid, std::process::id());
    assert!(snapshot.process.start_time_ms.unwrap() <= snapshot.taken_at_ms);
    assert!(snapshot.process.executable.contains("snapshot_roundtrip"));
    let names: Vec<&str> = snapshot.tasks.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"ab") && names.contains(&"ba"), "{names:?}");
    for owner in [Owner::Main, Owner::Internal, Owner::Overflow] {
        assert!(
            snapshot.buckets.iter().any(|b| b.owner == owner),
            "{owner:?}"
        );
    }
    let locks: Vec<&str> = snapshot.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(locks, ["left", "right"]);
    assert_eq!(snapshot.cycles.len(), 1);
    let cycle = &snapshot.cycles[0];
    assert!(cycle.text.starts_with("deadlock: "), "{}", cycle.text);
    assert!(cycle.text.contains("\"ab\"") && cycle.text.contains("\"ba\""));
    for link in &cycle.links {
        let resource = snapshot
            .resources
            .iter()
            .find(|r| r.id == link.resource)
            .expect("each link names its resource by id");
        assert_eq!(link.resource_label, format!("Mutex \"{}\"", resource.name));
    }
    assert!(snapshot
        .chains
        .iter()
        .any(|c| c.end == ChainEnd::Cycle && !c.text.is_empty()));

    let mut bytes = Vec::new();
    snapshot.to_writer(&mut bytes).unwrap();
    assert_eq!(Snapshot::from_slice(&bytes, "memory").unwrap(), snapshot);

    let dir = temp_dir("roundtrip");
    let path = turbowish_capture::write_to_dir(&snapshot, &dir).unwrap();
    assert_eq!(Snapshot::load(&path).unwrap(), snapshot);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_version_is_refused_before_its_shape_is_read() {
    let err = Snapshot::from_slice(br#"{"format_version": 3, "heap": {"v3": true}}"#, "v3.json")
        .unwrap_err();
    assert!(
        matches!(&err, LoadError::UnsupportedVersion { origin, found: 3 } if origin == "v3.json"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "v3.json: snapshot format_version 3 is not supported (this build reads 1, 2; it writes 2)"
    );
}

#[test]
fn each_bad_input_has_its_error() {
    let dir = temp_dir("bad-input");

    let missing = dir.join("missing.json");
    let err = Snapshot::load(&missing).unwrap_err();
    assert!(
        matches!(&err, LoadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("{}: cannot read", missing.display())));

    let err = Snapshot::load(&dir).unwrap_err();
    assert!(matches!(err, LoadError::NotAFile { .. }), "{err:?}");

    // Sparse: the size is checked before a byte is read.
    let huge = dir.join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_SNAPSHOT_BYTES + 1)
        .unwrap();
    let err = Snapshot::load(&huge).unwrap_err();
    assert!(
        matches!(err, LoadError::TooLarge { size, .. } if size == MAX_SNAPSHOT_BYTES + 1),
        "{err:?}"
    );

    let err = Snapshot::from_slice(b"{\n  \"format_version\": 1,\n  \"process\": {", "cut.json")
        .unwrap_err();
    match &err {
        LoadError::Json { line, message, .. } => {
            assert_eq!(*line, 3);
            assert!(message.contains("ends early"), "{message}");
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
    let err = Snapshot::from_slice(b"\n\nnot json", "text.json").unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Json {
                line: 3,
                column: 2,
                ..
            }
        ),
        "{err:?}"
    );

    let err = Snapshot::from_slice(br#"{"tasks": []}"#, "other.json").unwrap_err();
    assert!(
        matches!(&err, LoadError::Shape { path, .. } if path == "format_version"),
        "{err:?}"
    );

    // A real snapshot with one value of the wrong type.
    let mut value = serde_json::to_value(turbowish_capture::snapshot()).unwrap();
    value["buckets"][1]["memory"]["live_bytes"] = serde_json::json!("lots");
    let bytes = serde_json::to_vec(&value).unwrap();
    let err = Snapshot::from_slice(&bytes, "shape.json").unwrap_err();
    match &err {
        LoadError::Shape { path, .. } => assert_eq!(path, "buckets[1].memory.live_bytes"),
        other => panic!("expected a shape error, got {other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with("shape.json: not a TurboWish snapshot: field `buckets[1].memory.live_bytes`"));

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loads_what_snapshot_to_dir_wrote() {
    let dir = temp_dir("to-dir");
    let path = turbowish_capture::snapshot_to_dir(&dir).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let prefix = format!("turbowish-{}-", std::process::id());
    assert!(
        name.starts_with(&prefix) && name.ends_with(".json"),
        "{name}"
    );
    assert_eq!(mode(&path), 0o600);
    let loaded = Snapshot::load(&path).unwrap();
    assert_eq!(loaded.process.pid, std::process::id());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
