//! The protocol between berth and `driver.sh`, the script that runs the
//! buildpacks inside the sandbox: the marks it prints (`::berth:: phase
//! compile`) and the exit codes it ends with. Both are defined here only;
//! the script reads them from its environment (`driver_env`).

use std::time::Instant;

use super::BuildError;

/// The script itself, written into the sandbox.
pub const SCRIPT: &str = include_str!("driver.sh");

/// Lines starting with this are for berth, not for the user.
const MARK: &str = "::berth::";

/// How the driver ends when it did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// No buildpack detected the app.
    NoBuildpack,
    /// A buildpack's compile failed (its name was marked first).
    CompileFailed,
}

impl Exit {
    const ALL: [Exit; 2] = [Exit::NoBuildpack, Exit::CompileFailed];

    pub const fn code(self) -> i32 {
        match self {
            Exit::NoBuildpack => 3,
            Exit::CompileFailed => 4,
        }
    }

    const fn var(self) -> &'static str {
        match self {
            Exit::NoBuildpack => "BERTH_EXIT_NO_BUILDPACK",
            Exit::CompileFailed => "BERTH_EXIT_COMPILE_FAILED",
        }
    }

    fn of(code: i32) -> Option<Exit> {
        Exit::ALL.into_iter().find(|e| e.code() == code)
    }
}

/// The environment that tells the script the protocol.
pub fn driver_env() -> Vec<String> {
    let mut env = vec![format!("BERTH_MARK={MARK}")];
    env.extend(Exit::ALL.iter().map(|e| format!("{}={}", e.var(), e.code())));
    env
}

/// One mark the driver printed.
#[derive(Debug, PartialEq, Eq)]
pub enum Mark {
    Phase(String),
    CompileFailed(String),
    NoBuildpack,
    Done,
}

impl Mark {
    /// The mark a line holds, or None for the user's lines.
    pub fn parse(line: &str) -> Option<Mark> {
        let rest = line.strip_prefix(MARK)?.trim();
        Some(match rest.split_once(' ') {
            Some(("phase", name)) => Mark::Phase(name.to_owned()),
            Some(("compile-failed", name)) => Mark::CompileFailed(name.to_owned()),
            _ if rest == "no-buildpack" => Mark::NoBuildpack,
            _ => Mark::Done,
        })
    }
}

/// What the marks said so far: how long each phase took, and which
/// buildpack failed.
pub struct Progress {
    phase: String,
    phase_started: Instant,
    pub phases: Vec<(String, f64)>,
    failed_buildpack: Option<String>,
    no_buildpack: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress { phase: "sandbox".into(), phase_started: Instant::now(), phases: Vec::new(), failed_buildpack: None, no_buildpack: false }
    }

    pub fn on(&mut self, mark: Mark) {
        let now = Instant::now();
        self.phases.push((self.phase.clone(), (now - self.phase_started).as_secs_f64()));
        self.phase_started = now;
        match mark {
            Mark::Phase(name) => self.phase = name,
            Mark::CompileFailed(name) => self.failed_buildpack = Some(name),
            Mark::NoBuildpack => self.no_buildpack = true,
            Mark::Done => self.phase = "done".into(),
        }
    }

    /// The build's result from the driver's exit code.
    pub fn outcome(&self, exit_code: i32) -> Result<(), BuildError> {
        match (exit_code, Exit::of(exit_code)) {
            (0, _) => Ok(()),
            (_, Some(Exit::NoBuildpack)) if self.no_buildpack => Err(BuildError::NoBuildpack),
            (_, Some(Exit::CompileFailed)) => Err(BuildError::CompileFailed(self.failed_buildpack.clone().unwrap_or_else(|| "?".into()))),
            (code, _) => Err(BuildError::Sandbox(code)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_exits_round_trip() {
        assert_eq!(Mark::parse("::berth:: phase compile"), Some(Mark::Phase("compile".into())));
        assert_eq!(Mark::parse("::berth:: compile-failed Python"), Some(Mark::CompileFailed("Python".into())));
        assert_eq!(Mark::parse("::berth:: no-buildpack"), Some(Mark::NoBuildpack));
        assert_eq!(Mark::parse("-----> Python app detected"), None);
        let mut progress = Progress::new();
        progress.on(Mark::CompileFailed("Python".into()));
        assert!(matches!(progress.outcome(Exit::CompileFailed.code()), Err(BuildError::CompileFailed(n)) if n == "Python"));
        assert!(matches!(progress.outcome(Exit::NoBuildpack.code()), Err(BuildError::Sandbox(3))), "no mark, no such claim");
        assert!(driver_env().contains(&"BERTH_EXIT_COMPILE_FAILED=4".to_owned()));
        // The script uses the variables, never the numbers.
        assert!(SCRIPT.contains("exit \"$BERTH_EXIT_NO_BUILDPACK\"") && !SCRIPT.contains("exit 3"));
    }
}
