//! The `--help` of `turbowish` and of every command, snapshot-tested
//! (`tests/cmd/*.toml`; `TRYCMD=overwrite` regenerates the expected output).

#[test]
fn help_texts() {
    trycmd::TestCases::new()
        .register_bin("turbowish", trycmd::cargo::cargo_bin!("turbowish"))
        .case("tests/cmd/*.toml");
}
