//! Cached trees handed to the build by rename instead of copied: a
//! buildpack lists `CACHE_SUBDIR APP_PATH` lines in
//! `$CACHE_DIR/.berth-handover` (python: `venv .venv`). Before the next
//! build berth renames each cached tree into the fresh source tree (both
//! live on the host's disk under $BERTH_ROOT, so that is one rename), and
//! after the build (layers written, or failed) renames what is still there
//! back. The buildpack decides whether a handed-over tree is still good;
//! one it rebuilt it copies into the cache itself, as before.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::confined;

const SPEC_FILE: &str = ".berth-handover";

/// A relative path of plain names only: nothing can point outside.
fn plain(text: &str) -> Option<PathBuf> {
    let path = Path::new(text);
    let ok = !text.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| path.to_owned())
}

/// The (cache path, app path) pairs the cache asks for, both relative.
/// The spec is the build's own writing: read as a plain, small file.
fn pairs(cache: &Path) -> Vec<(PathBuf, PathBuf)> {
    let bytes = confined::read(cache, SPEC_FILE, 64 * 1024).ok().flatten().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (from, to) = (plain(words.next()?)?, plain(words.next()?)?);
            words.next().is_none().then_some((from, to))
        })
        .collect()
}

/// Nothing at `base/rel`, reached through real directories only.
fn free_beneath(base: &Path, rel: &Path) -> Option<PathBuf> {
    let path = confined::beneath(base, rel)?;
    fs::symlink_metadata(&path).is_err().then_some(path)
}

/// Moves each cached tree into `app_dir` where the source has nothing there.
/// Both ends are real directories beneath their roots: a symlink on either
/// side (the build's doing) would move a host directory instead.
pub fn hand_over(cache: &Path, app_dir: &Path) {
    for (cached, relative) in pairs(cache) {
        if !confined::is_real_dir(cache, &cached) {
            continue;
        }
        if let Some(target) = free_beneath(app_dir, &relative) {
            let _ = fs::rename(cache.join(&cached), target);
        }
    }
}

/// Moves each handed-over tree back unless the cache has a new one.
pub fn take_back(cache: &Path, app_dir: &Path) {
    for (cached, relative) in pairs(cache) {
        if !confined::is_real_dir(app_dir, &relative) {
            continue;
        }
        if let Some(target) = free_beneath(cache, &cached) {
            let _ = fs::rename(app_dir.join(&relative), target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_go_over_and_come_back_by_rename() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, app) = (dir.path().join("cache"), dir.path().join("app"));
        fs::create_dir_all(cache.join("venv/bin")).unwrap();
        fs::write(cache.join("venv/bin/python"), "x").unwrap();
        fs::create_dir_all(&app).unwrap();
        fs::write(cache.join(SPEC_FILE), "venv .venv\n../etc passwd\nvenv /abs\n").unwrap();
        hand_over(&cache, &app);
        assert!(app.join(".venv/bin/python").is_file() && !cache.join("venv").exists());
        take_back(&cache, &app);
        assert!(cache.join("venv/bin/python").is_file() && !app.join(".venv").exists());
        assert_eq!(pairs(&cache).len(), 1, "only plain relative names count");
    }

    #[test]
    fn a_tree_in_the_source_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, app) = (dir.path().join("cache"), dir.path().join("app"));
        fs::create_dir_all(cache.join("venv")).unwrap();
        fs::create_dir_all(app.join(".venv")).unwrap();
        fs::write(cache.join(SPEC_FILE), "venv .venv\n").unwrap();
        hand_over(&cache, &app);
        assert!(cache.join("venv").is_dir(), "the cache keeps its tree when the source has one");
    }
}
