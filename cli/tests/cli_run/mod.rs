//! Running the built `drlaas` binary in the command-line tests, and what it said.
#![allow(dead_code)] // each test binary uses a part

use std::process::Command;

use drlaas_chain::alloy::primitives::B256;

/// `drlaas`, with no key and no data directory taken from the test's own environment.
pub fn drlaas_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drlaas"));
    command.env_remove("DRLAAS_KEY").env_remove("DRLAAS_DATA_DIR");
    command
}

/// What one run of `drlaas` said.
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Runs `command` to its end.
    pub fn of(command: &mut Command) -> Ran {
        let out = command.output().expect("drlaas runs");
        Ran {
            ok: out.status.success(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// The run, which must have succeeded.
    pub fn succeeded(self, what: &str) -> Ran {
        assert!(self.ok, "{what} failed:\n{}\n{}", self.stdout, self.stderr);
        self
    }

    /// The stdout of a run that must have succeeded.
    pub fn success(self, what: &str) -> String {
        self.succeeded(what).stdout
    }

    /// The stderr of a run that must have failed.
    pub fn failure(self, what: &str) -> String {
        assert!(!self.ok, "{what} succeeded but should not have:\n{}", self.stdout);
        self.stderr
    }
}

/// The transaction hashes a command printed (`transaction 0x…`), in order.
pub fn hashes(stdout: &str) -> Vec<B256> {
    stdout
        .split("transaction ")
        .skip(1)
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}
