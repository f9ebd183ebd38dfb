//! Shared by the root tests that run the examples.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// An example binary of this package, built with this test's profile.
pub(crate) fn example_binary(name: &str) -> PathBuf {
    built_profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// `target/<profile>`, once the examples and the `turbowish` binary in it
/// are up to date. `cargo test --all-targets` compiles examples only as
/// test harnesses (their `main` never runs), so this builds the programs
/// with the cargo running the tests; it is quick when they are fresh.
fn built_profile_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => panic!("no profile directory above {}", exe.display()),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "--profile", profile, "--target-dir"])
            .arg(profile_dir.parent().unwrap())
            .args(["-p", "turbowish", "--examples"])
            .args(["-p", "turbowish-report", "--bin", "turbowish"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building the examples and `turbowish` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile_dir.to_owned()
    })
}
