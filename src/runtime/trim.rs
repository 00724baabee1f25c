//! Once its container runs, a shim only polls, waits and writes logs, yet
//! the code and tables it used to get there (libcontainer, the spec, the
//! settings) stay resident in every shim: about 8 MiB of berth's binary per
//! running container. Those pages are read-only views of the executable,
//! so the shim can let go of them: they stay in the page cache, shared, and
//! come back on a minor fault if a restart needs them again.

use std::fs;

/// One mapping of /proc/self/smaps: its range, permissions, file and how
/// much of it is private copies (copy-on-write) of the file.
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    path: String,
    anonymous_kb: u64,
}

fn mappings() -> Vec<Mapping> {
    let Ok(text) = fs::read_to_string("/proc/self/smaps") else { return Vec::new() };
    let mut all: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
        {
            let perms = fields.next().unwrap_or("").to_owned();
            let path = fields.nth(3).unwrap_or("").to_owned();
            all.push(Mapping { start, end, perms, path, anonymous_kb: 0 });
        } else if first == "Anonymous:"
            && let Some(last) = all.last_mut()
        {
            last.anonymous_kb = fields.next().and_then(|kb| kb.parse().ok()).unwrap_or(0);
        }
    }
    all
}

/// Drops this process's pages of its own executable's read-only mappings
/// that hold no private copies (text and constants; never the relocated
/// tables, whose private copies would be lost).
#[allow(unsafe_code)]
pub fn release_executable_pages() {
    let Ok(exe) = fs::read_link("/proc/self/exe") else { return };
    let exe = exe.to_string_lossy();
    for m in mappings() {
        if m.path != exe || m.perms.contains('w') || !m.perms.ends_with('p') || m.anonymous_kb != 0 {
            continue;
        }
        // SAFETY: the range is a whole private, read-only mapping of our own
        // executable with no copy-on-write pages, so its memory always equals
        // the file: MADV_DONTNEED only unmaps the pages, and the next access
        // maps them again from the page cache with the same contents.
        unsafe {
            libc::madvise(m.start as *mut libc::c_void, m.end - m.start, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_runs_on_after_letting_go_of_its_pages() {
        let own = mappings().into_iter().filter(|m| m.perms.contains('x') && !m.path.is_empty()).count();
        assert!(own > 0, "smaps lists executable mappings");
        release_executable_pages();
        // Code, constants and formatting all still work: pages come back on use.
        assert_eq!(format!("{:?}", vec![1, 2, 3]), "[1, 2, 3]");
        assert!(mappings().iter().any(|m| m.perms.contains('x')));
    }
}
