//! The `drlaas` command line.

use std::process::Command;

#[test]
fn crd_prints_the_committed_definitions() {
    let out = Command::new(env!("CARGO_BIN_EXE_drlaas")).arg("crd").output().unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/generated/drlaas.io.yaml")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}
