//! The bare repository of an app (`apps/<app>/repo.git`) and its
//! pre-receive hook, which hands the pushed refs to `berth git-hook APP`.

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, TreeEntry};

use crate::app::App;
use crate::state::atomic;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("git {action} failed: {source}")]
    Git {
        action: &'static str,
        #[source]
        source: git2::Error,
    },
    #[error("the pushed tree holds an entry named {0}, which berth does not write")]
    BadEntry(&'static str),
    #[error("a symbolic link in the pushed tree is longer than {LINK_CAP} bytes")]
    LongLink,
    #[error("the pushed tree holds more than {cap} bytes (limits.archive_bytes in config.toml)")]
    TooLarge { cap: u64 },
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error("cannot write the hook {path}: {source}")]
    Hook {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn repo_dir(app: &App) -> PathBuf {
    app.repo_dir()
}

/// Creates the bare repository if needed and (re)writes its hook so it
/// always calls this berth binary.
pub fn ensure(root: &Path, app: &App) -> Result<PathBuf, RepoError> {
    let dir = repo_dir(app);
    if !dir.join("HEAD").exists() {
        let mut options = git2::RepositoryInitOptions::new();
        options.bare(true).initial_head("main");
        Repository::init_opts(&dir, &options).map_err(|source| RepoError::Git { action: "init", source })?;
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/bin/berth"));
    // The repository belongs to this BERTH_ROOT, whoever pushes to it.
    let hook = format!(
        "#!/bin/sh\n# Written by berth: every push to this repository is handed to berth.\nBERTH_ROOT='{}' exec '{}' git-hook '{}'\n",
        root.display(),
        exe.display(),
        app.name
    );
    let path = dir.join("hooks/pre-receive");
    let hook_err = |source| RepoError::Hook { path: path.clone(), source };
    atomic::write_atomic(&path, hook.as_bytes()).map_err(|e| hook_err(e.source))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(hook_err)?;
    Ok(dir)
}

/// The commit a revision (a ref name or an object id) names, if any.
pub fn resolve(repo: &Path, revision: &str) -> Result<Option<String>, RepoError> {
    let repo = open(repo)?;
    Ok(repo.revparse_single(revision).ok().and_then(|o| o.peel_to_commit().ok()).map(|c| c.id().to_string()))
}

/// Opens the bare repository. In a pre-receive hook the pushed objects
/// are still in quarantine, which git names in the environment; libgit2
/// reads them only when told.
fn open(dir: &Path) -> Result<Repository, RepoError> {
    let git = |source| RepoError::Git { action: "open", source };
    let repo = Repository::open_bare(dir).map_err(git)?;
    let odb = repo.odb().map_err(git)?;
    let mut quarantined: Vec<PathBuf> = std::env::var_os("GIT_OBJECT_DIRECTORY").map(PathBuf::from).into_iter().collect();
    if let Some(alternates) = std::env::var_os("GIT_ALTERNATE_OBJECT_DIRECTORIES") {
        quarantined.extend(std::env::split_paths(&alternates));
    }
    for objects in quarantined.iter().filter(|p| p.is_dir()) {
        odb.add_disk_alternate(&objects.to_string_lossy()).map_err(git)?;
    }
    drop(odb);
    Ok(repo)
}

/// Longest symbolic link target written (Linux's PATH_MAX).
const LINK_CAP: usize = 4096;

/// Writes the tree of `revision` into the empty directory `target`, as a
/// checkout does: files 0644 or 0755, links as links, submodules as empty
/// directories. Pushed trees are hostile: every entry is created new (an
/// entry never lands on or through one written before), names are plain
/// components, and the walk keeps its own stack however deep the tree.
/// Files count against `cap` by their size in git's header, before
/// they are inflated, so a small pack cannot fill the disk or memory.
pub fn export(repo: &Path, revision: &str, target: &Path, cap: u64) -> Result<(), RepoError> {
    let git = |action| move |source| RepoError::Git { action, source };
    let repo = open(repo)?;
    let odb = repo.odb().map_err(git("open the object database"))?;
    let tree = repo.revparse_single(revision).and_then(|o| o.peel_to_tree()).map_err(git("read the pushed tree"))?;
    let mut budget = Budget { left: cap, cap };
    let mut pending: Vec<(Oid, PathBuf)> = vec![(tree.id(), target.to_path_buf())];
    while let Some((id, dir)) = pending.pop() {
        let tree = repo.find_tree(id).map_err(git("read a tree"))?;
        for entry in tree.iter() {
            let path = dir.join(entry_name(&entry)?);
            budget.spend(ENTRY_COST)?;
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    make_dir(&path)?;
                    pending.push((entry.id(), path));
                }
                Some(ObjectType::Blob) => {
                    let (size, _) = odb.read_header(entry.id()).map_err(git("read a file's size"))?;
                    budget.spend(size as u64)?;
                    let blob = repo.find_blob(entry.id()).map_err(git("read a file"))?;
                    write_blob(&path, entry.filemode(), blob.content())?;
                }
                // A submodule's commit: git archive leaves an empty directory.
                _ => make_dir(&path)?,
            }
        }
    }
    Ok(())
}

/// What an entry costs besides its bytes (its inode and name), so a tree
/// of millions of empty files meets the cap too.
const ENTRY_COST: u64 = 512;

/// Bytes the export may still write.
struct Budget {
    left: u64,
    cap: u64,
}

impl Budget {
    fn spend(&mut self, bytes: u64) -> Result<(), RepoError> {
        self.left = self.left.checked_sub(bytes).ok_or(RepoError::TooLarge { cap: self.cap })?;
        Ok(())
    }
}

/// A tree entry's name when it is one plain path component.
fn entry_name<'a>(entry: &'a TreeEntry<'_>) -> Result<&'a std::ffi::OsStr, RepoError> {
    let name = entry.name_bytes();
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(RepoError::BadEntry("with a slash, a NUL or nothing"));
    }
    if name == b"." || name == b".." {
        return Err(RepoError::BadEntry("'.' or '..'"));
    }
    if name.eq_ignore_ascii_case(b".git") {
        return Err(RepoError::BadEntry(".git"));
    }
    Ok(std::ffi::OsStr::from_bytes(name))
}

fn make_dir(path: &Path) -> Result<(), RepoError> {
    fs::create_dir(path).map_err(|source| RepoError::Io(crate::state::PathIo { action: "create", path: path.to_owned(), source }))
}

/// One file of the tree, created new (`O_EXCL` fails on anything there,
/// links included).
fn write_blob(path: &Path, mode: i32, content: &[u8]) -> Result<(), RepoError> {
    let io = |source| RepoError::Io(crate::state::PathIo { action: "write", path: path.to_owned(), source });
    if mode == 0o120000 {
        if content.len() > LINK_CAP || content.contains(&0) {
            return Err(RepoError::LongLink);
        }
        return std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(content), path).map_err(io);
    }
    let perm = if mode == 0o100755 { 0o755 } else { 0o644 };
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(perm).open(path).map_err(io)?;
    file.write_all(content).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository whose one commit holds `entries` (name, mode, content)
    /// at the top of its tree, written with libgit2 as a pusher could.
    fn repo_with(entries: &[(&str, i32, &[u8])]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let mut builder = repo.treebuilder(None).unwrap();
        for (name, mode, content) in entries {
            let blob = repo.blob(content).unwrap();
            builder.insert(name, blob, *mode).unwrap();
        }
        let tree = repo.find_tree(builder.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let commit = repo.commit(Some("refs/heads/main"), &sig, &sig, "m", &tree, &[]).unwrap();
        (dir, commit.to_string())
    }

    #[test]
    fn exports_files_modes_and_links_as_a_checkout_does() {
        let (repo, commit) = repo_with(&[("run.sh", 0o100755, b"#!/bin/sh\n"), ("a.txt", 0o100644, b"a"), ("link", 0o120000, b"/etc")]);
        let out = tempfile::tempdir().unwrap();
        export(repo.path(), "refs/heads/main", out.path(), 1 << 20).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(out.path().join("run.sh")).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(fs::read(out.path().join("a.txt")).unwrap(), b"a");
        assert_eq!(fs::read_link(out.path().join("link")).unwrap(), Path::new("/etc"));
        assert_eq!(resolve(repo.path(), "refs/heads/main").unwrap(), Some(commit));
        assert_eq!(resolve(repo.path(), "refs/heads/none").unwrap(), None);
    }

    /// A commit on main whose tree is written raw, as a hostile pusher can
    /// (libgit2's own builder refuses these names).
    fn raw_tree_commit(entries: &[(&str, &[u8], Oid)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let mut raw = Vec::new();
        for (mode, name, id) in entries {
            raw.extend_from_slice(format!("{mode} ").as_bytes());
            raw.extend_from_slice(name);
            raw.push(0);
            raw.extend_from_slice(id.as_bytes());
        }
        let odb = repo.odb().unwrap();
        let tree = odb.write(ObjectType::Tree, &raw).unwrap();
        let text = format!("tree {tree}\nauthor t <t@t> 0 +0000\ncommitter t <t@t> 0 +0000\n\nm\n");
        let commit = odb.write(ObjectType::Commit, text.as_bytes()).unwrap();
        repo.reference("refs/heads/main", commit, true, "test").unwrap();
        dir
    }

    #[test]
    fn refuses_entries_a_checkout_would_not_write() {
        let scratch = tempfile::tempdir().unwrap();
        let blob = Repository::init_bare(scratch.path()).unwrap().blob(b"x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        let cases: Vec<Vec<(&str, &[u8], Oid)>> = vec![
            vec![("100644", b".git", blob)],
            vec![("100644", b".GIT", blob)],
            vec![("100644", b"..", blob)],
            vec![("100644", b"a/b", blob)],
            vec![("100644", b"", blob)],
            vec![("100644", b"twice", blob), ("100644", b"twice", blob)],
        ];
        for entries in cases {
            let repo = raw_tree_commit(&entries);
            let out = tempfile::tempdir().unwrap();
            assert!(export(repo.path(), "refs/heads/main", out.path(), 1 << 20).is_err(), "{:?}", entries[0].1);
        }
        // A link "a" to a directory outside, then a tree also named "a"
        // whose file would land there if the walk followed the link.
        let repo_dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(repo_dir.path()).unwrap();
        let link = repo.blob(outside.path().as_os_str().as_bytes()).unwrap();
        let mut builder = repo.treebuilder(None).unwrap();
        builder.insert("planted", repo.blob(b"x").unwrap(), 0o100644).unwrap();
        let inner = builder.write().unwrap();
        let mut raw = Vec::new();
        for (mode, id) in [("120000", link), ("40000", inner)] {
            raw.extend_from_slice(format!("{mode} a").as_bytes());
            raw.push(0);
            raw.extend_from_slice(id.as_bytes());
        }
        let tree = repo.find_tree(repo.odb().unwrap().write(ObjectType::Tree, &raw).unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        repo.commit(Some("refs/heads/main"), &sig, &sig, "m", &tree, &[]).unwrap();
        let out = tempfile::tempdir().unwrap();
        assert!(export(repo_dir.path(), "refs/heads/main", out.path(), 1 << 20).is_err());
        assert!(!outside.path().join("planted").exists(), "a file landed through a pushed link");
    }

    #[test]
    fn stops_at_the_cap_before_inflating_what_is_over_it() {
        let big = vec![0u8; 3 << 20];
        let (repo, _) = repo_with(&[("big", 0o100644, &big)]);
        let out = tempfile::tempdir().unwrap();
        let err = export(repo.path(), "refs/heads/main", out.path(), 1 << 20).unwrap_err();
        assert!(matches!(err, RepoError::TooLarge { cap: 1048576 }), "{err}");
        assert!(!out.path().join("big").exists());
        // Many empty files meet the cap too.
        let names: Vec<String> = (0..4096).map(|i| format!("f{i}")).collect();
        let entries: Vec<(&str, i32, &[u8])> = names.iter().map(|n| (n.as_str(), 0o100644, &b""[..])).collect();
        let (repo, _) = repo_with(&entries);
        let out = tempfile::tempdir().unwrap();
        assert!(matches!(export(repo.path(), "refs/heads/main", out.path(), 1 << 20), Err(RepoError::TooLarge { .. })));
    }
}
