//! The hostile-input suite: every input an attacker controls (app names,
//! ssh command lines, config, domains, ports, nginx settings, storage paths,
//! buildpack URLs, crafted image layers and archives, source archives),
//! each run through the real binary. Every one must exit 1 or 2 with one
//! `berth: ` line, change nothing under `$BERTH_ROOT`, and write nothing
//! outside it. Ends with a count line.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::oci::{gzip, oci_archive};
use common::site::is_root;
use common::{Host, Run};

/// One hostile input: the command line, what it reads on stdin, and the
/// ssh command line when it arrives over ssh.
struct Case {
    args: Vec<String>,
    stdin: Vec<u8>,
    ssh_line: Option<String>,
    env: Vec<(String, PathBuf)>,
}

fn cmd(args: &[&str]) -> Case {
    Case { args: args.iter().map(|a| a.to_string()).collect(), stdin: Vec::new(), ssh_line: None, env: Vec::new() }
}

fn with_stdin(args: &[&str], stdin: Vec<u8>) -> Case {
    Case { stdin, ..cmd(args) }
}

/// A command line as sshd hands it to the forced command of key `dev`.
fn ssh(line: &str) -> Case {
    Case { ssh_line: Some(line.to_owned()), ..cmd(&["ssh-command", "--key", "dev"]) }
}

fn run(host: &Host, case: &Case) -> Run {
    let mut command = host.command(&case.args);
    match &case.ssh_line {
        Some(line) => command.env("SSH_ORIGINAL_COMMAND", line),
        None => command.env_remove("SSH_ORIGINAL_COMMAND"),
    };
    command.envs(case.env.iter().map(|(k, v)| (k, v)));
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = case.stdin.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    Run { code: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

// --- Crafted tar streams -------------------------------------------------

/// A tar entry whose name goes into the header as raw bytes, unchecked.
fn raw_entry(tar: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8], mode: u32) {
    let mut header = tar::Header::new_gnu();
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(data.len() as u64);
    header.set_mtime(0);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

fn finish(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// A tar whose one regular file expands to `bytes` zeros: gzip makes it tiny.
fn zeros_tar(bytes: usize) -> Vec<u8> {
    let mut tar = Vec::new();
    raw_entry(&mut tar, b"zeros", tar::EntryType::Regular, b"", &vec![0u8; bytes], 0o644);
    finish(tar)
}

/// Layers an unpack must refuse, by name.
fn hostile_layers() -> Vec<(&'static str, Vec<u8>)> {
    use tar::EntryType::{Directory, GNUSparse, Link, Regular, Symlink};
    let one = |name: &[u8], kind, link: &[u8], data: &[u8]| {
        let mut t = Vec::new();
        raw_entry(&mut t, name, kind, link, data, 0o644);
        finish(t)
    };
    let mut layers = vec![
        ("traversal", one(b"../../escaped", Regular, b"", b"x")),
        ("deep-traversal", one(b"a/../../../escaped", Regular, b"", b"x")),
        ("absolute", one(b"/tmp/escaped", Regular, b"", b"x")),
        ("whiteout-dotdot", one(b".wh...", Regular, b"", b"")),
        ("whiteout-dot", one(b".wh..", Regular, b"", b"")),
        ("whiteout-empty", one(b".wh.", Regular, b"", b"")),
        ("whiteout-nested-dotdot", one(b"usr/.wh..", Regular, b"", b"")),
        ("hardlink-out", one(b"passwd", Link, b"../../../../etc/passwd", b"")),
        ("hardlink-absolute", one(b"shadow", Link, b"/etc/shadow", b"")),
        ("hardlink-missing", one(b"x", Link, b"nothing-here", b"")),
        ("sparse", one(b"sparse", GNUSparse, b"", b"")),
        ("symlink-without-target", one(b"dangling", Symlink, b"", b"")),
    ];
    let mut through = Vec::new();
    raw_entry(&mut through, b"etc", Symlink, b"/etc", b"", 0o777);
    raw_entry(&mut through, b"etc/cron.d/evil", Regular, b"", b"* * * * * root id\n", 0o644);
    layers.push(("write-through-symlink", finish(through)));
    let mut dir_then_link = Vec::new();
    raw_entry(&mut dir_then_link, b"d", Directory, b"", b"", 0o755);
    raw_entry(&mut dir_then_link, b"d", Symlink, b"/root", b"", 0o777);
    raw_entry(&mut dir_then_link, b"d/loot", Regular, b"", b"x", 0o644);
    layers.push(("duplicate-dir-becomes-symlink", finish(dir_then_link)));
    let mut link_through = Vec::new();
    raw_entry(&mut link_through, b"up", Symlink, b"/etc", b"", 0o777);
    raw_entry(&mut link_through, b"stolen", Link, b"up/shadow", b"", 0o644);
    layers.push(("hardlink-through-symlink", finish(link_through)));
    let mut long = Vec::new();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(Regular);
    header.set_size(1);
    let overlong = "n".repeat(300);
    let mut builder = tar::Builder::new(&mut long);
    builder.append_data(&mut header, &overlong, &b"x"[..]).unwrap();
    builder.finish().unwrap();
    drop(builder);
    layers.push(("overlong-name", long));
    let mut short = Vec::new();
    raw_entry(&mut short, b"short", Regular, b"", b"", 0o644);
    // The header claims 4096 bytes; the stream ends first.
    let claimed = short.len() - 512;
    short[claimed + 124..claimed + 135].copy_from_slice(b"00000010000");
    let mut h = tar::Header::from_byte_slice(&short[claimed..claimed + 512]).clone();
    h.set_cksum();
    short[claimed..claimed + 512].copy_from_slice(h.as_bytes());
    layers.push(("truncated-file", short));
    layers.push(("gzip-bomb", zeros_tar(64 << 20)));
    layers
}

// --- Crafted pushes -----------------------------------------------------

/// Writes one object, unchecked (`--literally`), into the objects of the
/// bare repository `git_dir`, as a hostile pusher's pack can; its id.
fn git_object(git_dir: &Path, kind: &str, bytes: &[u8]) -> String {
    let mut child = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["hash-object", "--literally", "-w", "--stdin", "-t", kind])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A raw tree of (mode, name, object id) entries.
fn git_tree(git_dir: &Path, entries: &[(&str, &[u8], &str)]) -> String {
    let mut raw = Vec::new();
    for (mode, name, id) in entries {
        raw.extend_from_slice(format!("{mode} ").as_bytes());
        raw.extend_from_slice(name);
        raw.push(0);
        raw.extend((0..id.len()).step_by(2).map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap()));
    }
    git_object(git_dir, "tree", &raw)
}

/// One entry of a crafted tree: mode, name, the blob's bytes.
type TreeEntry = (&'static str, Vec<u8>, Vec<u8>);

/// Pushes of crafted trees to app `cat`, each as its pre-receive hook sees
/// it: the pushed objects in a quarantine directory of their own, the
/// app's repository as the alternate, the ref on stdin.
fn hostile_pushes(root: &Path, scratch: &Path, outside: &Path) -> Vec<Case> {
    let repo = root.join("apps/cat/repo.git");
    assert!(std::process::Command::new("git").args(["init", "-q", "--bare"]).arg(&repo).status().unwrap().success());
    let mut cases = Vec::new();
    let mut trees: Vec<(&str, Vec<TreeEntry>)> = vec![
        ("dotdot", vec![("100644", b"..".to_vec(), b"x".to_vec())]),
        ("dot", vec![("100644", b".".to_vec(), b"x".to_vec())]),
        ("dot-git", vec![("100644", b".git".to_vec(), b"x".to_vec())]),
        ("dot-git-upper", vec![("100644", b".Git".to_vec(), b"x".to_vec())]),
        ("slash", vec![("100644", b"a/b".to_vec(), b"x".to_vec())]),
        ("empty-name", vec![("100644", Vec::new(), b"x".to_vec())]),
        ("twice", vec![("100644", b"t".to_vec(), b"x".to_vec()), ("100644", b"t".to_vec(), b"y".to_vec())]),
        ("long-link", vec![("120000", b"l".to_vec(), vec![b'a'; 5000])]),
        ("nul-link", vec![("120000", b"l".to_vec(), b"/etc\0x".to_vec())]),
        ("big-file", vec![("100644", b"big".to_vec(), vec![0; 5 << 20])]),
    ];
    let many: Vec<TreeEntry> = (0..9000).map(|i| ("100644", format!("f{i}").into_bytes(), Vec::new())).collect();
    trees.push(("many-files", many));
    for (name, entries) in trees {
        let quarantine = scratch.join(format!("push-{name}"));
        assert!(std::process::Command::new("git").args(["init", "-q", "--bare"]).arg(&quarantine).status().unwrap().success());
        let blobs: Vec<String> = entries.iter().map(|(_, _, data)| git_object(&quarantine, "blob", data)).collect();
        let raw: Vec<(&str, &[u8], &str)> =
            entries.iter().zip(&blobs).map(|((mode, name, _), id)| (*mode, name.as_slice(), id.as_str())).collect();
        let tree = git_tree(&quarantine, &raw);
        cases.push(push_of(&repo, &quarantine, &tree));
    }
    // A link to a directory outside, then a tree of the same name whose
    // file would land there if the export followed the link.
    let quarantine = scratch.join("push-link-then-tree");
    assert!(std::process::Command::new("git").args(["init", "-q", "--bare"]).arg(&quarantine).status().unwrap().success());
    let link = git_object(&quarantine, "blob", outside.as_os_str().as_encoded_bytes());
    let planted = git_object(&quarantine, "blob", b"x");
    let inner = git_tree(&quarantine, &[("100644", b"planted", &planted)]);
    let tree = git_tree(&quarantine, &[("120000", b"a", &link), ("40000", b"a", &inner)]);
    cases.push(push_of(&repo, &quarantine, &tree));
    cases
}

/// The hook's view of a push of one commit of `tree` to main.
fn push_of(repo: &Path, quarantine: &Path, tree: &str) -> Case {
    let text = format!("tree {tree}\nauthor t <t@t> 0 +0000\ncommitter t <t@t> 0 +0000\n\nhostile\n");
    let commit = git_object(quarantine, "commit", text.as_bytes());
    let stdin = format!("{} {commit} refs/heads/main\n", "0".repeat(40)).into_bytes();
    Case {
        env: vec![
            ("GIT_DIR".into(), repo.to_owned()),
            ("GIT_OBJECT_DIRECTORY".into(), quarantine.join("objects")),
            ("GIT_ALTERNATE_OBJECT_DIRECTORIES".into(), repo.join("objects")),
        ],
        ..with_stdin(&["git-hook", "cat"], stdin)
    }
}

/// One entry of a crafted source archive: name, type, link target, data.
type SourceEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

// --- A hostile registry ---------------------------------------------------

/// A registry serving Docker images berth must refuse, each before any of
/// its blobs is stored. Returns its port.
fn hostile_registry() -> u16 {
    use common::oci::sha;
    const MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    let docker = |config: &[u8], config_size: usize, layer_type: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{config_size},"digest":"sha256:{}"}},"layers":[{{"mediaType":"{layer_type}","size":4,"digest":"sha256:{}"}}]}}"#,
            sha(config),
            sha(b"tar!")
        )
        .into_bytes()
    };
    let gzip_layer = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    let not_json = b"{\"architecture\": [\"not a config\"".to_vec();
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{{"mediaType":"{MANIFEST}","size":10,"digest":"sha256:{}","platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#,
        sha(b"arm")
    );
    let manifest = |tag: &str, body: Vec<u8>, kind: &str| (format!("/v2/evil/manifests/{tag}"), kind.to_owned(), body);
    let blob = |body: &[u8]| (format!("/v2/evil/blobs/sha256:{}", sha(body)), "application/octet-stream".to_owned(), body.to_vec());
    common::servers::static_registry(vec![
        manifest("bigconfig", docker(b"{}", 5 << 20, gzip_layer), MANIFEST),
        manifest("badconfig", docker(&not_json, not_json.len(), gzip_layer), MANIFEST),
        blob(&not_json),
        // Announces one config, serves other bytes under its digest.
        manifest("wrongconfig", docker(b"{\"os\":\"linux\"}", 15, gzip_layer), MANIFEST),
        (
            format!("/v2/evil/blobs/sha256:{}", sha(b"{\"os\":\"linux\"}")),
            "application/octet-stream".into(),
            b"{\"os\":\"evil!\"}".to_vec(),
        ),
        manifest("noamd64", list.into_bytes(), "application/vnd.docker.distribution.manifest.list.v2+json"),
        manifest(
            "schema1",
            br#"{"schemaVersion":1,"name":"evil","fsLayers":[]}"#.to_vec(),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        manifest("zstd", docker(b"{}", 2, "application/vnd.oci.image.layer.v1.tar+zstd"), MANIFEST),
        manifest("garbage", b"\x00\xffnot json at all".to_vec(), MANIFEST),
    ])
}

// --- The suite ------------------------------------------------------------

/// The state under the root that a refused input must leave alone: all of it.
fn state(host: &Host) -> BTreeMap<PathBuf, Vec<u8>> {
    host.snapshot()
}

fn outside_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

#[test]
#[ignore = "needs root: lchown, whiteouts and the ssh edge run as root"]
fn hostile_inputs_are_refused_and_change_nothing() {
    assert!(is_root(), "run with ./test.sh as root");
    let host = Host::new();
    let root = host.path().to_owned();
    let r = root.display().to_string();
    let outside = tempfile::Builder::new().prefix("berth-hostile-out-").tempdir().unwrap();
    let o = outside.path().display().to_string();
    // Plugins an admin might be handed: each refused at install.
    let plugin_fixtures = tempfile::tempdir().unwrap();
    let pf = plugin_fixtures.path().display().to_string();
    for (dir, manifest) in [
        ("badname", "name = \"../evil\"\nversion = \"1\"\nberth = \"0.1\"\n".to_owned()),
        ("oldberth", "name = \"old\"\nversion = \"1\"\nberth = \"99.0\"\n".to_owned()),
        ("unknownkey", "name = \"x\"\nversion = \"1\"\nberth = \"0.1\"\nrun = \"rm -rf /\"\n".to_owned()),
        ("reserved", "name = \"apps\"\nversion = \"1\"\nberth = \"0.1\"\n".to_owned()),
        ("badverb", "name = \"verbs\"\nversion = \"1\"\nberth = \"0.1\"\n[commands.\"../x\"]\n".to_owned()),
        ("huge", format!("name = \"huge\"\nversion = \"1\"\nberth = \"0.1\"\n#{}\n", "x".repeat(100_000))),
    ] {
        fs::create_dir_all(plugin_fixtures.path().join(dir)).unwrap();
        fs::write(plugin_fixtures.path().join(dir).join("plugin.toml"), manifest).unwrap();
    }
    // A plugin tarball whose entries climb out, and one through a symlink.
    let made = std::process::Command::new("python3")
        .args(["-c", "import io,sys,tarfile\nfor name,evil in (('climb','../escaped'),('through','link/escaped')):\n t=tarfile.open(sys.argv[1]+'/'+name+'.tar.gz','w:gz')\n if name=='through':\n  l=tarfile.TarInfo('link'); l.type=tarfile.SYMTYPE; l.linkname='/tmp'; t.addfile(l)\n i=tarfile.TarInfo(evil); d=b'x'; i.size=1; t.addfile(i,io.BytesIO(d)); t.close()"])
        .arg(plugin_fixtures.path())
        .status()
        .unwrap();
    assert!(made.success());
    fs::create_dir_all(plugin_fixtures.path().join("linked")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", plugin_fixtures.path().join("linked/plugin.toml")).unwrap();
    // Files an admin might hand containers:run and stacks:build.
    let env_link = plugin_fixtures.path().join("env-link");
    std::os::unix::fs::symlink("/etc/passwd", &env_link).unwrap();
    fs::write(plugin_fixtures.path().join("env-bad"), "GOOD=1\nthe password is hunter2\n").unwrap();
    fs::write(plugin_fixtures.path().join("env-huge"), format!("A={}\n", "x".repeat(70_000))).unwrap();
    for (dir, extra) in [("prune-out", "prune = [\"../../etc\"]\n"), ("service-build", "")] {
        let recipe = format!(
            "kind = \"service\"\nsuite = \"bookworm\"\nvariant = \"minbase\"\nrun_packages = []\nbuild_packages = [{}]\n{extra}[user]\nname = \"s\"\nuid = 5\nhome = \"/h\"\n",
            if dir == "service-build" { "\"gcc\"" } else { "" }
        );
        fs::create_dir_all(plugin_fixtures.path().join(dir)).unwrap();
        fs::write(plugin_fixtures.path().join(dir).join("recipe.toml"), recipe).unwrap();
    }
    // Build tools from the package index must be pinned by version and hash.
    for (dir, tool) in [
        ("tools-unpinned", "uv"),
        ("tools-no-hash", "uv==0.13.9"),
        ("tools-short-hash", "uv==0.13.9 --hash=sha256:abc"),
        (
            "tools-extra-option",
            "uv==0.13.9 --index-url=http://evil --hash=sha256:d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
        ),
        ("tools-url", "uv @ https://evil/uv.whl --hash=sha256:d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19"),
    ] {
        let recipe = format!(
            "suite = \"bookworm\"\nvariant = \"minbase\"\nrun_packages = []\nbuild_packages = []\nbuild_python_tools = [{tool:?}]\n[user]\nname = \"app\"\nuid = 1000\nhome = \"/home/app\"\n"
        );
        fs::create_dir_all(plugin_fixtures.path().join(dir)).unwrap();
        fs::write(plugin_fixtures.path().join(dir).join("recipe.toml"), recipe).unwrap();
    }
    let keys_dir = tempfile::tempdir().unwrap();
    fs::write(
        root.join("config.toml"),
        format!(
            "[limits]\nlayer_bytes = 4000000\narchive_bytes = 4000000\n[ssh]\nauthorized_keys = \"{}/authorized_keys\"\n",
            keys_dir.path().display()
        ),
    )
    .unwrap();
    host.ok(["apps:create", "cat"]);
    host.ok(["apps:create", "dog"]);
    host.ok(["domains:add", "dog", "owned.test"]);
    host.ok(["storage:ensure-directory", "cat-data"]);
    host.ok(["storage:create", "cat-files"]);
    std::os::unix::fs::symlink("/etc", root.join("storage/evil-link")).unwrap();
    // What any host that ran for a while has: the app's lock, a scratch
    // dir, the layer cache. Their first use is no change a refusal made.
    host.ok(["config:set", "cat", "--no-restart", "SETUP=1"]);
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::create_dir_all(root.join("layers")).unwrap();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl dev";
    fs::write(keys_dir.path().join("dev.pub"), key).unwrap();
    host.ok(["ssh-keys:add", "dev", &format!("{}/dev.pub", keys_dir.path().display()), "--apps", "cat"]);
    let evil_registry = format!("127.0.0.1:{}", hostile_registry());
    let service_plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/service");
    host.ok(["plugin:install", service_plugin.to_str().unwrap(), "--name", "postgres"]);

    // Crafted layers are imported first (an import stores, it does not
    // unpack); unpacking each is the hostile input.
    let mut cases = Vec::new();
    for (name, layer) in hostile_layers() {
        let file = keys_dir.path().join(format!("{name}.tar"));
        fs::write(&file, oci_archive(&layer, &format!("hostile/{name}:1"))).unwrap();
        host.ok(["images:import", file.to_str().unwrap()]);
        cases.push(cmd(&["images:unpack", &format!("hostile/{name}:1")]));
    }
    cases.extend(hostile_pushes(&root, keys_dir.path(), outside.path()));
    // Archives an import must refuse whole.
    let archive = |name: &str, bytes: Vec<u8>| {
        let file = keys_dir.path().join(name);
        fs::write(&file, bytes).unwrap();
        file.display().to_string()
    };
    let benign = {
        let mut t = Vec::new();
        raw_entry(&mut t, b"hello", tar::EntryType::Regular, b"", b"hi\n", 0o644);
        finish(t)
    };
    let reserved = archive("reserved.tar", oci_archive(&benign, "berth/stack-run:bookworm"));
    let benign_file = archive("benign.tar", oci_archive(&benign, "hostile/benign:1"));
    let reserved_build = archive("reserved-build.tar", oci_archive(&benign, "berth/stack-build:bookworm"));
    let mut bad_digest = oci_archive(&benign, "hostile/bad-digest:1");
    let at = bad_digest.len() / 2;
    bad_digest[at] ^= 0x55;
    let bad_digest = archive("bad-digest.tar", bad_digest);
    let not_tar = archive("not-a-tar", b"this is not an archive at all".to_vec());
    let empty = archive("empty.tar", Vec::new());
    let bomb_archive = archive("bomb.tar.gz", gzip(&zeros_tar(64 << 20)));
    for args in [
        vec!["images:import", reserved.as_str()],
        vec!["images:import", reserved_build.as_str()],
        vec!["images:import", bad_digest.as_str()],
        vec!["images:import", not_tar.as_str()],
        vec!["images:import", empty.as_str()],
        vec!["images:import", bomb_archive.as_str()],
        vec!["images:import", "/nonexistent/archive.tar"],
        vec!["images:import", benign_file.as_str(), "--name", "berth/stack-run:bookworm"],
        vec!["stacks:import", not_tar.as_str()],
        vec!["stacks:import", bad_digest.as_str()],
    ] {
        cases.push(cmd(&args));
    }

    // Source archives on stdin (git:from-archive): none may make the app.
    let source = |entries: &[SourceEntry]| {
        let mut t = Vec::new();
        for (name, kind, link, data) in entries {
            raw_entry(&mut t, name, *kind, link, data, 0o644);
        }
        finish(t)
    };
    use tar::EntryType::{Link, Regular, Symlink};
    for stdin in [
        source(&[(b"../escaped", Regular, b"", b"x")]),
        source(&[(b"/tmp/escaped", Regular, b"", b"x")]),
        source(&[(b"up", Symlink, b"/etc", b""), (b"up/cron.d/evil", Regular, b"", b"x")]),
        source(&[(b"a/../../escaped", Regular, b"", b"x")]),
        gzip(&zeros_tar(64 << 20)),
        zeros_tar(5 << 20),
        b"not a tar".to_vec(),
        Vec::new(),
        finish(Vec::new()),
        gzip(b"garbage inside gzip"),
        source(&[(b"shadow", Link, b"/etc/shadow", b"")]),
    ] {
        cases.push(with_stdin(&["git:from-archive", "newapp", "-"], stdin));
    }

    let long_name = "a".repeat(64);
    let long_domain = format!("{}.test", "d".repeat(260));
    let storage = format!("{r}/storage/cat-data");
    let simple: Vec<Vec<String>> = [
        // Global settings and the commands this surface added.
        &["ps:set", "--global", "restart-policy", "sometimes"][..],
        &["ps:set", "--global", "stop-timeout-seconds", "18446744073709551616"],
        &["git:set", "--global", "deploy-branch", "../main"],
        &["checks:set", "--global", "wait-to-retire", "99999"],
        &["nginx:set", "--global", "client-max-body-size", "1m; evil"],
        &["nginx:set", "--global", "error-log-path", "/etc/cron.d/x"],
        &["registry:set", "--global", "server", "a b"],
        &["config:set", "--global", "1A=x"],
        &["config:set", "--global", "--encoded", "A=AA=="],
        &["config:export", "cat", "--format", "docker-args"],
        &["apps:clone", "cat", "dog"],
        &["apps:clone", "cat", "../dog"],
        &["apps:clone", "ghost", "newapp"],
        &["proxy:set", "cat", "type", "caddy"],
        &["ps:report", "cat", "--no-such-field"],
        // App names.
        &["apps:create", "Cat"][..],
        &["apps:create", "-cat"],
        &["apps:create", "cat_1"],
        &["apps:create", "cat.app"],
        &["apps:create", "../cat"],
        &["apps:create", "cat/.."],
        &["apps:create", ""],
        &["apps:create", " "],
        &["apps:create", "cat app"],
        &["apps:create", &long_name],
        &["apps:create", "çat"],
        &["apps:create", "cat\n"],
        &["apps:create", "CAT"],
        &["apps:create", "-"],
        &["apps:create", "."],
        &["apps:create", ".."],
        &["apps:create", "cat;id"],
        &["apps:create", "$(id)"],
        &["apps:create", "cat"],
        &["apps:rename", "cat", "Dog!"],
        &["apps:rename", "cat", "dog"],
        &["apps:destroy", "../apps", "--force"],
        // Rebase: names, an app never deployed, extra words.
        &["apps:rebase", "../cat"],
        &["apps:rebase", "cat"],
        &["apps:rebase", "nosuchapp"],
        &["apps:rebase", "cat", "dog"],
        &["apps:rebase", "--all", "cat"],
        &["stacks:outdated", "bookworm"],
        &["stacks:outdated", "--format", "yaml"],
        // Config keys and values.
        &["config:set", "cat", "1A=x"],
        &["config:set", "cat", "A-B=x"],
        &["config:set", "cat", "=x"],
        &["config:set", "cat", "NOVALUE"],
        &["config:set", "cat", "A B=x"],
        &["config:set", "cat", "Ä=x"],
        &["config:set", "cat", "A.B=x"],
        &["config:set", "cat", "$(id)=x"],
        &["config:set", "cat", "GOOD=x", "1BAD=y"],
        &["config:set", "cat", "--encoded", "A=AA=="],
        &["config:set", "cat", "--encoded", "A=aGVsbG8Ad29ybGQ="],
        &["config:set", "cat", "--encoded", "A=!!!notbase64"],
        &["config:set", "nosuchapp", "A=1"],
        &["config:get", "cat", "BAD-KEY"],
        &["config:unset", "cat", "1X"],
        // Domains.
        &["domains:add", "cat", ""],
        &["domains:add", "cat", "-x.test"],
        &["domains:add", "cat", "a..b"],
        &["domains:add", "cat", "a_b.test"],
        &["domains:add", "cat", &long_domain],
        &["domains:add", "cat", "exa mple.test"],
        &["domains:add", "cat", "example.test;"],
        &["domains:add", "cat", "exa\"mple.test"],
        &["domains:add", "cat", "*.*.test"],
        &["domains:add", "cat", "ex$ample.test"],
        &["domains:add", "cat", "{x}.test"],
        &["domains:add", "cat", "a/b.test"],
        &["domains:add", "cat", "127.0.0.1:80"],
        &["domains:add", "cat", "ünicode.test"],
        &["domains:add", "cat", "."],
        &["domains:add", "cat", "*"],
        &["domains:add", "cat", "a.-b.test"],
        &["domains:add", "cat", "owned.test"],
        &["domains:set", "cat", "OWNED.test"],
        &["domains:add-global", "bad domain"],
        // Log sizes, build dirs and app.json paths: sizes and paths inside the push only.
        &["logs:set", "cat", "max-size", "10x"],
        &["logs:set", "cat", "max-size", "-1m"],
        &["logs:set", "cat", "max-size", "99999999999999999999g"],
        &["logs:set", "cat", "vector-sink", "console://"],
        &["logs:set", "--global", "max-size", "1m;"],
        &["logs:report", "cat", "--logs-no-such-field"],
        &["builder:set", "cat", "build-dir", "../outside"],
        &["builder:set", "cat", "build-dir", "/etc"],
        &["builder:set", "cat", "build-dir", "a/./b"],
        &["builder:set", "cat", "build-dir", "a\nb"],
        &["builder:set", "cat", "selected", "dockerfile"],
        &["builder:set", "--global", "build-dir", ".."],
        &["builder:set", "cat", "keep-git-dir", "true"],
        &["app-json:set", "cat", "appjson-path", "/etc/passwd"],
        &["app-json:set", "cat", "appjson-path", "../../app.json"],
        &["app-json:set", "--global", "appjson-path", "x//app.json"],
        // Port maps.
        &["proxy:ports-add", "cat", "http:0:5000"],
        &["proxy:ports-add", "cat", "http:65536:5000"],
        &["proxy:ports-add", "cat", "http:80"],
        &["proxy:ports-add", "cat", "ftp:80:5000"],
        &["proxy:ports-add", "cat", "http:-1:5000"],
        &["proxy:ports-add", "cat", "http:80:0"],
        &["proxy:ports-add", "cat", "http:80:99999"],
        &["proxy:ports-add", "cat", "http::5000"],
        &["proxy:ports-add", "cat", "http:80:5000:9"],
        &["proxy:ports-add", "cat", "https:abc:5000"],
        &["proxy:ports-add", "cat", "http:80:5000;rm"],
        &["proxy:ports-add", "cat", "http:8080:5000", "ftp:81:5000"],
        // nginx settings.
        &["nginx:set", "cat", "client-max-body-size", "1x"],
        &["nginx:set", "cat", "client-max-body-size", "1m;"],
        &["nginx:set", "cat", "client-max-body-size", "1m\ninclude /etc/shadow"],
        &["nginx:set", "cat", "proxy-read-timeout", "-1"],
        &["nginx:set", "cat", "proxy-read-timeout", "99999999999999999999s"],
        &["nginx:set", "cat", "error-log-path", "/etc/cron.d/x"],
        &["nginx:set", "cat", "access-log-path", "/root/x.log"],
        &["nginx:set", "cat", "access-log-path", "relative.log"],
        &["nginx:set", "cat", "error-log-path", "/var/log/nginx/../../../etc/x"],
        &["nginx:set", "cat", "access-log-path", "/var/log/nginx/x;y"],
        &["nginx:set", "cat", "bogus-key", "1"],
        // Storage.
        &["storage:mount", "cat", "/etc:/data"],
        &["storage:mount", "cat", "/tmp/../etc:/data"],
        &["storage:mount", "cat", "relative:/data"],
        &["storage:mount", "cat", &format!("{storage}:/proc/x")],
        &["storage:mount", "cat", "/:/data"],
        &["storage:mount", "cat", &format!("{storage}:relative")],
        &["storage:mount", "cat", &storage],
        &["storage:mount", "cat", &format!("{storage}:/data:rw:x")],
        &["storage:mount", "cat", &format!("{r}/storage/../apps:/data")],
        &["storage:mount", "cat", &format!("{r}:/data")],
        &["storage:ensure-directory", "../x"],
        &["storage:ensure-directory", ""],
        &["storage:ensure-directory", "A"],
        &["storage:ensure-directory", "x/y"],
        &["storage:ensure-directory", ".."],
        &["storage:create", "../x"],
        &["storage:create", "Bad"],
        &["storage:create", "a_b"],
        &["storage:create", "x", "/etc"],
        &["storage:create", "x", "/nonexistent"],
        &["storage:create", "evil-link"],
        &["storage:create", "x", "--mode", "9999"],
        &["storage:create", "x", "--chown", "-1"],
        &["storage:create", "x", "--reclaim-policy", "Recycle"],
        &["storage:create", "cat-files", &storage],
        &["storage:set", "cat-files", "mode", "77777"],
        &["storage:set", "cat-files", "bogus", "1"],
        &["storage:set", "cat-files", "access-mode", "ReadWriteMany"],
        &["storage:destroy", "nope", "--force"],
        &["storage:mount", "cat", "cat-files"],
        &["storage:mount", "cat", "cat-files", "--container-dir", "/proc/x"],
        &["storage:mount", "cat", "cat-files", "--container-dir", "relative"],
        &["storage:mount", "cat", "nope", "--container-dir", "/x"],
        &["storage:unmount", "cat", "cat-files"],
        &["storage:info", "nope"],
        &["letsencrypt:set", "cat", "email", "nope"],
        &["letsencrypt:set", "cat", "email", "a@b\nc"],
        &["letsencrypt:set", "cat", "server", "ftp://acme.test/dir"],
        &["letsencrypt:set", "cat", "graceperiod", "0"],
        &["letsencrypt:set", "cat", "graceperiod", "-1"],
        &["letsencrypt:set", "cat", "dns-provider", "cloudflare"],
        &["letsencrypt:set", "--global", "bogus", "1"],
        &["certs:show", "cat", "pem"],
        &["certs:show", "cat", "key"],
        &["certs:update", "cat", "/nonexistent/cert.pem", "/nonexistent/key.pem"],
        &["ports:report", "nope"],
        &["ports:report", "cat", "--ports-mapp"],
        &["nginx:validate-config", "nope"],
        &["proxy:clear-config", "nope"],
        &["ps:stop", "cat", "--all"],
        &["git:sync", "cat", "ext::sh -c id"],
        &["git:sync", "cat", "--upload-pack=id"],
        &["git:sync", "cat", "relative/repo"],
        &["git:sync", "cat", "/nonexistent/repo"],
        &["git:sync", "cat", &format!("file://{o}"), "-x"],
        &["git:sync", "cat", &format!("file://{o}"), "a..b"],
        &["events:on", "cat"],
        &["run:logs", "cat", "-n", "x"],
        &["run:logs", "--container", "nope"],
        &["run:stop", "--container", "../x"],
        &["events", "--follow"],
        // Buildpack URLs.
        &["buildpacks:add", "cat", "file:///etc"],
        &["buildpacks:add", "cat", "http://127.0.0.1/x.git"],
        &["buildpacks:add", "cat", "http://localhost/x.git"],
        &["buildpacks:add", "cat", "http://[::1]/x.git"],
        &["buildpacks:add", "cat", "https://127.0.0.2/x.git"],
        &["buildpacks:add", "cat", "http://169.254.169.254/x.git"],
        &["buildpacks:add", "cat", "git://example.test/x.git"],
        &["buildpacks:add", "cat", "ssh://example.test/x.git"],
        &["buildpacks:add", "cat", "ftp://example.test/x"],
        &["buildpacks:add", "cat", "-x"],
        &["buildpacks:add", "cat", "relative/path"],
        &["buildpacks:add", "cat", "/tmp/../etc"],
        &["buildpacks:add", "cat", "https://ex ample.test/x.git"],
        &["buildpacks:set", "cat", "file:///root/bp"],
        // Branches, releases, scale, process settings, limits, checks.
        &["git:set", "cat", "deploy-branch", "-x"],
        &["git:set", "cat", "deploy-branch", "a..b"],
        &["git:set", "cat", "deploy-branch", "a b"],
        &["git:set", "cat", "deploy-branch", "x/"],
        &["git:set", "cat", "deploy-branch", "$(id)"],
        &["git:set", "cat", "deploy-branch", ""],
        &["git:set", "cat", "deploy-branch", "a~1"],
        &["git:set", "cat", "bogus", "x"],
        &["releases:set", "cat", "keep", "0"],
        &["releases:set", "cat", "keep", "-1"],
        &["releases:set", "cat", "keep", "1001"],
        &["releases:set", "cat", "keep", "x"],
        &["releases:set", "cat", "keep", "99999999999999999999"],
        &["releases:rollback", "cat", "v99"],
        &["ps:scale", "cat", "web=-1"],
        &["ps:scale", "cat", "web=x"],
        &["ps:scale", "cat", "=1"],
        &["ps:scale", "cat", "WEB=1"],
        &["ps:scale", "cat", "web=99999999999"],
        &["ps:scale", "cat", "we b=1"],
        &["ps:scale", "cat", "web=1=2"],
        &["ps:set", "cat", "stop-timeout-seconds", "18446744073709551615"],
        &["ps:set", "cat", "stop-timeout-seconds", "-1"],
        &["ps:set", "cat", "stop-timeout-seconds", "x"],
        &["ps:set", "cat", "restart-policy", "always:3"],
        &["ps:set", "cat", "restart-policy", "bogus"],
        &["ps:set", "cat", "restart-policy", "on-failure:x"],
        &["ps:set", "cat", "bogus", "1"],
        &["resource:limit", "cat", "--memory", "1x"],
        &["resource:limit", "cat", "--memory", "-5m"],
        &["resource:limit", "cat", "--cpu", "abc"],
        &["resource:limit", "cat", "--cpu", "-1"],
        &["resource:limit", "cat", "--pids", "0"],
        &["resource:limit", "cat", "--pids", "x"],
        &["resource:limit", "cat", "--memory", "99999999999999999999g"],
        &["checks:set", "cat", "wait-to-retire", "x"],
        &["checks:set", "cat", "wait-to-retire", "-1"],
        &["checks:set", "cat", "wait-to-retire", "99999999999999999999"],
        &["builds:set", "cat", "network", "bridge"],
        &["builds:set", "cat", "timeout", "0"],
        &["builds:set", "cat", "timeout", "99999999999999999999"],
        &["builds:set", "cat", "retention", "0"],
        &["builds:set", "cat", "retention", "-1"],
        &["builds:set", "--global", "network", "host"],
        &["builds:list", "cat", "--kind", "x"],
        &["builds:info", "cat", "abc"],
        &["builds:info", "cat", "999"],
        // Certificates, images, keys.
        &["certs:add", "cat", "/nonexistent/cert.pem", "/nonexistent/key.pem"],
        &["certs:add", "cat", &format!("{o}/none.pem"), "/etc/passwd"],
        &["images:inspect", "BAD REF"],
        &["images:remove", "../x"],
        &["images:from-dir", "/nonexistent", "hostile/x:1"],
        &["ssh-keys:add", "../evil", "/etc/passwd"],
        &["ssh-keys:add", "evil", "/etc/passwd"],
        &["ssh-keys:grant", "nokey", "cat"],
        &["ssh-keys:grant", "dev", "Bad-App"],
        // git properties, logins, hosts and images.
        &["git:set", "cat", "rev-env-var", "A-B"],
        &["git:set", "cat", "rev-env-var", "1X"],
        &["git:set", "cat", "rev-env-var", "$(id)"],
        &["git:set", "cat", "keep-git-dir", "yes"],
        &["git:set", "cat", "archive-max-files", "0"],
        &["git:set", "cat", "archive-max-files", "-1"],
        &["git:set", "--global", "archive-max-size", "10q"],
        &["git:set", "cat", "source-image", "a b"],
        &["git:set", "cat", "source-image", "x\ny"],
        &["git:auth", "-oProxyCommand=id"],
        &["git:auth", "a b", "bot", "pw"],
        &["git:auth", "host:0", "bot", "pw"],
        &["git:auth", "github.com", "a b", "pw"],
        &["git:auth", "github.com", "bot", "pw with space"],
        &["git:auth", "github.com", "bot", "pw\nmachine evil"],
        &["git:auth", "github.com", "bot"],
        &["git:auth-status", "-x"],
        &["git:allow-host", "-oProxyCommand=id"],
        &["git:allow-host", "host;id"],
        &["git:allow-host", "host:99999"],
        &["git:initialize", "nope"],
        &["git:status", "nope"],
        &["git:load-image", "cat", "Bad Name!!"],
        &["git:load-image", "cat", "berth/stack-run:bookworm"],
        &["git:load-image", "cat", "hostile/img:1"],
        // apps, cron and buildpacks properties; checks, domains, storage.
        &["apps:set", "cat", "disable-autocreation", "true"],
        &["apps:set", "--global", "disable-autocreation", "yes"],
        &["apps:set", "--global", "bogus", "1"],
        &["cron:set", "cat", "maintenance", "yes"],
        &["cron:set", "--global", "mailto", "ops@example.test"],
        &["cron:set", "cat", "bogus", "x"],
        &["buildpacks:set-property", "cat", "stack", "nope"],
        &["buildpacks:set-property", "cat", "stack", "../x"],
        &["buildpacks:set-property", "cat", "bogus", "x"],
        &["buildpacks:report", "cat", "--buildpacks-stak"],
        &["checks:run", "nope"],
        &["checks:run", "cat"],
        &["checks:run", "cat", "WEB"],
        &["domains:disable", "nope"],
        &["domains:disable", "cat", "extra"],
        &["domains:enable", "--all", "cat"],
        &["storage:exec", "nope"],
        &["storage:exec", "../x"],
        &["repo:gc", "nope"],
        // Plugins: sources, names, manifests.
        &["plugin:install", ""],
        &["plugin:install", "relative/dir"],
        &["plugin:install", "/nonexistent"],
        &["plugin:install", "ext::sh -c id"],
        &["plugin:install", "file:///nonexistent.git#main"],
        &["plugin:install", &format!("file://{pf}/badname#--upload-pack=id")],
        &["plugin:install", &o],
        &["plugin:install", &format!("{pf}/badname")],
        &["plugin:install", &format!("{pf}/oldberth")],
        &["plugin:install", &format!("{pf}/unknownkey")],
        &["plugin:install", &format!("{pf}/reserved")],
        &["plugin:install", &format!("{pf}/badverb")],
        &["plugin:install", &format!("{pf}/huge")],
        &["plugin:install", &format!("{pf}/linked")],
        &["plugin:install", &format!("{pf}/oldberth"), "--name", "Bad/Name"],
        &["plugin:install", &format!("{pf}/oldberth"), "--name", "config"],
        &["plugin:install", "/nonexistent/p.tar.gz"],
        &["plugin:install", &format!("{pf}/climb.tar.gz")],
        &["plugin:install", &format!("{pf}/through.tar.gz")],
        &["plugin:enable", "nope"],
        &["plugin:disable", "../x"],
        &["plugin:uninstall", "nope"],
        &["plugin:update", "nope"],
        &["plugin:installed", "nope"],
        &["plugin:installed", "../x"],
        &["plugin:install-dependencies", "extra"],
        &["plugin:trigger"],
        &["nope:verb", "cat"],
        &["nginx:import-ssl", "nope"],
        // Containers run by hand and services' own: secrets files, mounts, allow lists.
        &["containers:run", "hostile/traversal:1", "--env-file", &format!("{pf}/env-link"), "--", "true"],
        &["containers:run", "hostile/traversal:1", "--env-file", &format!("{pf}/env-bad"), "--", "true"],
        &["containers:create", "hostile/traversal:1", "--env-file", &format!("{pf}/env-huge"), "--", "true"],
        &["containers:create", "hostile/traversal:1", "--volume", "/nonexistent:/data", "--", "true"],
        &["containers:create", "hostile/traversal:1", "--volume", "/etc:/proc/x", "--", "true"],
        &["containers:create", "hostile/traversal:1", "--volume", "/etc:/data:rw:extra", "--", "true"],
        &["containers:create", "hostile/traversal:1", "--volume", "etc:/data", "--", "true"],
        &["containers:allow", "nope", "cat"],
        &["containers:allow", "nope", "../x"],
        &["containers:deny", "../x", "cat"],
        &["containers:exec", "nope", "id"],
        &["containers:exec", "nope"],
        &["containers:inspect", "../x"],
        &["stacks:build", "evil", "--recipe", &format!("{pf}/prune-out")],
        &["stacks:build", "evil", "--recipe", &format!("{pf}/service-build")],
        &["stacks:build", "evil", "--recipe", &format!("{pf}/tools-unpinned")],
        &["stacks:build", "evil", "--recipe", &format!("{pf}/tools-no-hash")],
        &["stacks:build", "evil", "--recipe", &format!("{pf}/tools-short-hash")],
        &["stacks:build", "evil", "--recipe", &format!("{pf}/tools-extra-option")],
        &["stacks:build", "evil", "--recipe", &format!("{pf}/tools-url")],
        // A hostile registry: Docker images that must not convert, lists without linux/amd64.
        &["images:pull", &format!("{evil_registry}/evil:bigconfig"), "--insecure"],
        &["images:pull", &format!("{evil_registry}/evil:badconfig"), "--insecure"],
        &["images:pull", &format!("{evil_registry}/evil:wrongconfig"), "--insecure"],
        &["images:pull", &format!("{evil_registry}/evil:noamd64"), "--insecure"],
        &["images:pull", &format!("{evil_registry}/evil:schema1"), "--insecure"],
        &["images:pull", &format!("{evil_registry}/evil:zstd"), "--insecure"],
        &["images:pull", &format!("{evil_registry}/evil:garbage"), "--insecure"],
        &["images:push", "berth/x:1", &format!("{evil_registry}/evil:x"), "--insecure", "--format", "v1"],
        // The postgres service plugin: names, versions, aliases, missing services.
        &["postgres:create", "../x"],
        &["postgres:create", "a;id"],
        &["postgres:create", "$(id)"],
        &["postgres:create", "x", "--image-version", "99"],
        &["postgres:create", "x", "--force"],
        &["postgres:create"],
        &["postgres:link", "nope", "cat"],
        &["postgres:link", "nope", "cat", "--alias", "a;b"],
        &["postgres:unlink", "nope", "cat"],
        &["postgres:info", "nope"],
        &["postgres:export", "nope"],
        &["postgres:import", "nope"],
        &["postgres:connect", "../../etc"],
        &["postgres:destroy", "nope", "--force"],
        &["postgres:logs", "nope", "-t"],
        &["postgres:app-links"],
    ]
    .iter()
    .map(|a| a.iter().map(|s| s.to_string()).collect())
    .collect();
    for args in simple {
        cases.push(Case { args, stdin: Vec::new(), ssh_line: None, env: Vec::new() });
    }
    cases.push(with_stdin(&["certs:add", "cat"], b"not a tar of a certificate and key".to_vec()));
    cases.push(with_stdin(&["nginx:import-ssl", "cat"], b"not a tar of a certificate and key".to_vec()));
    cases.push(with_stdin(&["ssh-keys:add", "evil"], b"command=\"sh\" ssh-ed25519 AAAA".to_vec()));

    // ssh command lines from an app-scoped key.
    for line in [
        "",
        "apps:list; id",
        "$(id)",
        "apps:create `id`",
        "apps:list | sh",
        "apps:list && id",
        "config:set cat A=1 > /etc/x",
        "shim x",
        "git-hook cat",
        "ssh-command --key other",
        "bash",
        "git-receive-pack '../etc'",
        "git-upload-pack '/etc/passwd'",
        "git-receive-pack 'dog'",
        "git-upload-pack 'dog'",
        "git-receive-pack 'newapp'",
        "git-receive-pack 'cat' extra",
        "git-archive 'cat'",
        "ssh-keys:add evil",
        "ssh-keys:grant dev dog",
        "config:set dog A=1",
        "config:show dog",
        "storage:mount cat /etc:/x --force",
        "containers:list",
        "images:import /etc/shadow",
        "nginx:set cat error-log-path /etc/x",
        "proxy:ports-add cat http:25:5000",
        "builds:set cat network host",
        "builds:set --global retention 1",
        "storage:create evil",
        "storage:report dog",
        "letsencrypt:set cat server https://acme.evil.test/dir",
        "certs:update cat /etc/ssl/private/key.pem /etc/ssl/private/key.pem",
        "certs:show dog key",
        "proxy:clear-config dog",
        "ps:stop --all",
        "nginx:stop",
        "git:sync cat /etc",
        "git:sync cat file:///root/secret.git",
        "events:on",
        "run:stop --container x",
        "events",
        "builds:prune --all-apps",
        "apps:create 'unterminated",
        "run dog id",
        // Quotes are split as a shell would; what a shell expands is still refused.
        "config:set cat \"A=$(id)\"",
        "config:set cat \"A=`id`\"",
        "config:set cat A=1 \\",
        "config:set cat A=*",
        "config:set cat ~/x",
        "config:set cat #A=1",
        "config:set cat \"A=1",
        // Host-wide settings and ports through Dokku's newer names.
        "config:set --global EVIL=1",
        "ps:set --global restart-policy no",
        "git:set --global deploy-branch evil",
        "nginx:set --global client-max-body-size 1g",
        "ports:add cat http:25:5000",
        "ports:set cat http:8080:5000",
        "git:auth github.com evil token",
        "git:allow-host 'h;id'",
        "git:generate-deploy-key",
        "git:public-key",
        "domains:disable cat",
        "storage:exec loot -- id",
        "apps:set --global disable-autocreation true",
        "cron:set --global maintenance true",
        "--quiet",
        "--quiet --force ssh-keys:list",
        "--trace git:auth github.com evil token",
        "plugin:install /tmp",
        "config dog",
        "--quiet config dog",
        "plugin:list",
        "plugin:trigger post-deploy cat v1",
        // Service commands are for admins; app-links only for granted apps.
        "postgres:create mine",
        "postgres:link db cat",
        "postgres:app-links dog",
        // Rebasing another's app, or every app, is not a scoped key's.
        "apps:rebase dog",
        "apps:rebase --all",
        "stacks:outdated",
        "containers:allow service.postgres.db cat",
        "containers:exec service.postgres.db id",
    ] {
        cases.push(ssh(line));
    }

    let mut refused = 0;
    let mut accepted = Vec::new();
    for case in &cases {
        let before = state(&host);
        let run = run(&host, case);
        let what = match &case.ssh_line {
            Some(line) => format!("ssh {line:?}"),
            None => format!("{:?}", case.args),
        };
        let one_line = run.stderr.lines().count() == 1 && run.stderr.starts_with("berth: ");
        let unchanged = state(&host) == before;
        let nothing_outside = outside_files(outside.path()).is_empty() && !Path::new("/tmp/escaped").exists();
        if (run.code == 1 || run.code == 2) && one_line && unchanged && nothing_outside {
            refused += 1;
        } else {
            accepted.push(format!(
                "{what}: exit {}, stderr {:?}, state {}, outside {}",
                run.code,
                run.stderr.chars().take(300).collect::<String>(),
                if unchanged { "unchanged" } else { "CHANGED" },
                if nothing_outside { "clean" } else { "WRITTEN" }
            ));
        }
    }
    println!("{} hostile inputs: {refused} refused, {} accepted", cases.len(), accepted.len());
    assert!(accepted.is_empty(), "accepted:\n{}", accepted.join("\n"));
    assert!(cases.len() >= 150, "only {} hostile inputs", cases.len());
    // No layer of them is in the unpack cache, nor a temp dir of one.
    let layers: Vec<_> = outside_files(&root.join("layers"));
    assert!(layers.is_empty(), "left in the layer cache: {layers:?}");
}
