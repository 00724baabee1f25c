//! Shared helpers for integration tests: run the real `berth` binary under a
//! private `BERTH_ROOT`, as a user would.
#![allow(dead_code)]

pub mod oci;
pub mod push_host;
pub mod servers;
pub mod site;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Host {
    pub root: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Host {
    pub fn new() -> Host {
        Host { root: tempfile::Builder::new().prefix("berth-test-").tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(args).env("BERTH_ROOT", self.path());
        cmd
    }

    /// Runs berth with stdin closed and returns what a user would see.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_with_stdin(args, b"")
    }

    pub fn run_with_stdin<I, S>(&self, args: I, input: &[u8]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("berth runs");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
        Run { code: status.code().unwrap_or(-1), stdout, stderr: String::from_utf8_lossy(&stderr).into_owned() }
    }

    /// Runs berth and fails the test unless it exits 0.
    pub fn ok<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let run = self.run(&args);
        assert_eq!(run.code, 0, "berth {args:?} failed: {}{}", run.out(), run.stderr);
        run
    }

    /// Every file under the root with its content: to prove a failed command changed nothing.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        walk(self.path(), self.path(), &mut files);
        files
    }
}

fn walk(base: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(base).unwrap().to_owned();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            files.insert(rel, b"<dir>".to_vec());
            walk(base, &path, files);
        } else if meta.is_file() {
            files.insert(rel, std::fs::read(&path).unwrap());
        } else {
            files.insert(rel, b"<other>".to_vec());
        }
    }
}

/// Asserts a failed run: exit 1 or 2 and one `berth: ...` line on stderr.
pub fn assert_clear_failure(run: &Run, what: &str) {
    assert!(run.code == 1 || run.code == 2, "{what}: exit {} ({})", run.code, run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: expected one error line, got {:?}", run.stderr);
    assert!(lines[0].starts_with("berth: "), "{what}: {:?}", lines[0]);
}

/// Runs a peer tool (skopeo, umoci, tar, ...) and returns its stdout; fails the test if it fails.
pub fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A buildpack in `dir` whose bin/detect and bin/compile run these bash
/// lines, and whose bin/release names no process types.
pub fn write_buildpack(dir: &Path, detect: &str, compile: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for (name, body) in [("detect", detect), ("compile", compile), ("release", "echo '--- {}'")] {
        let path = dir.join("bin").join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
