//! Builds as a user meets them: the example apps through the built-in
//! buildpacks in the sandbox, into images whose containers answer; the
//! dependency cache; buildpacks from git; offline builds; and failures.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::site::{Site, is_root};
use common::{Run, write_buildpack};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Build helpers on the shared test site.
impl Site {
    fn berth(&self, args: &[&str]) -> Run {
        let out = self.host.command(args).env("BERTH_BUILDPACKS", repo().join("buildpacks")).output().unwrap();
        Run { code: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
    }

    fn build(&self, app: &str, dir: &Path) -> Run {
        if self.host.run(["apps:exists", app]).code != 0 {
            self.host.ok(["apps:create", app]);
        }
        self.berth(&["builds:create", app, dir.to_str().unwrap()])
    }

    fn build_ok(&self, app: &str, dir: &Path) -> String {
        let run = self.build(app, dir);
        assert_eq!(run.code, 0, "build of {app} failed: {}{}", run.out(), run.stderr);
        run.out()
    }

    fn layers(&self, image: &str) -> Vec<String> {
        let inspect: serde_json::Value = serde_json::from_str(&self.host.ok(["images:inspect", image]).out()).unwrap();
        inspect["manifest"]["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
    }

    /// Runs the app image's web process and returns what GET / answers.
    fn answer(&self, image: &str, id: &str) -> String {
        self.host.ok(["containers:run", image, "--id", id, "--env", "PORT=5000"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let list: serde_json::Value = serde_json::from_str(&self.host.ok(["containers:list", "--format", "json"]).out()).unwrap();
            let address = list.as_array().unwrap().iter().find(|c| c["id"] == id).and_then(|c| c["address"].as_str().map(str::to_owned));
            if let Some(address) = address {
                let out = Command::new("curl").args(["-s", "-f", "-m", "2", &format!("http://{address}:5000/")]).output().unwrap();
                if out.status.success() {
                    self.host.ok(["containers:rm", id, "--force"]);
                    return String::from_utf8_lossy(&out.stdout).into_owned();
                }
            }
            assert!(Instant::now() < deadline, "{image} never answered: {}", self.host.run(["containers:logs", id]).out());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn copy_example(name: &str, to: &Path) -> PathBuf {
    let dir = to.join(name);
    assert!(Command::new("cp").arg("-a").arg(repo().join("examples").join(name)).arg(&dir).status().unwrap().success());
    dir
}

#[test]
#[ignore = "needs root: builds need root"]
fn catmeow_builds_answers_and_rebuilds_with_the_cached_dependencies() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-cat", "10.215.1.0/24", "");
    let work = tempfile::tempdir().unwrap();
    let app = copy_example("catmeow", work.path());
    let first = site.build_ok("catmeow", &app);
    assert!(first.contains("-----> Python app detected"), "{first}");
    assert!(first.contains("Installing requirements with uv"), "{first}");
    assert_eq!(site.answer("berth/app-catmeow:latest", "cat-web-1"), "Cat dreams meow..\n");
    let before = site.layers("berth/app-catmeow:b1");

    // A code-only change: pip does not run, the dependency layer is the same blob.
    let code = fs::read_to_string(app.join("catmeow.py")).unwrap().replace("Cat dreams meow..", "Cat dreams purr..");
    fs::write(app.join("catmeow.py"), code).unwrap();
    let second = site.build_ok("catmeow", &app);
    assert!(second.contains("installed on this host before: using them (no installer run)"), "{second}");
    assert!(!second.contains("Installing requirements with uv"), "{second}");
    let after = site.layers("berth/app-catmeow:b2");
    assert_eq!(after.len(), before.len());
    let n = before.len();
    assert_eq!(after[..n - 1], before[..n - 1], "stack and dependency layers must be unchanged");
    assert_ne!(after[n - 1], before[n - 1], "the app layer must be new");
    assert_eq!(site.answer("berth/app-catmeow:b2", "cat-web-2"), "Cat dreams purr..\n");

    let list: serde_json::Value = serde_json::from_str(&site.host.ok(["builds:list", "catmeow", "--format", "json"]).out()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(site.host.ok(["builds:output", "catmeow", "1"]).out().contains("Installing requirements with uv"));

    // Another app with the same requirements (and a .venv of its own pushed
    // along) installs nothing: it gets the host's shared install and layer.
    fs::create_dir_all(app.join(".venv/bin")).unwrap();
    fs::write(app.join(".venv/bin/junk"), "pushed").unwrap();
    let kitten = site.build_ok("kitten", &app);
    assert!(kitten.contains("installed on this host before: using them (no installer run)"), "{kitten}");
    assert!(kitten.contains("Dependencies as other apps on this host have them: reusing their layer"), "{kitten}");
    assert!(!kitten.contains("Installing"), "{kitten}");
    let kitten_layers = site.layers("berth/app-kitten:latest");
    assert_eq!(kitten_layers[n - 2], before[n - 2], "the dependency layer is the first app's");
    assert_eq!(site.answer("berth/app-kitten:latest", "kitten-web-1"), "Cat dreams purr..\n");
    // The shared install is root's: no app's build can change it.
    let deps = site.host.path().join("deps");
    let entry = fs::read_dir(&deps).unwrap().flatten().find(|e| !e.file_name().to_string_lossy().starts_with('.')).unwrap().path();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(entry.join(".venv/bin")).unwrap().uid(), 0);
    assert!(!entry.join(".venv/bin/junk").exists());

    // Dokku's retention and reports over the real records.
    assert_eq!(site.host.ok(["builds:report", "catmeow", "--build-status"]).out().trim(), "succeeded");
    site.host.ok(["builds:set", "catmeow", "retention", "1"]);
    assert!(site.host.ok(["builds:prune", "catmeow"]).out().contains("catmeow: 1 build records pruned"));
    let info: serde_json::Value = serde_json::from_str(&site.host.ok(["builds:info", "catmeow", "2", "--format", "json"]).out()).unwrap();
    assert_eq!((info["status"].as_str(), info["kind"].as_str()), (Some("succeeded"), Some("build")));
    assert_eq!(site.host.run(["builds:info", "catmeow", "1"]).code, 1, "a pruned build is gone");
}

#[test]
#[ignore = "needs root: builds need root"]
fn node_and_static_examples_build_and_answer() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-node", "10.215.2.0/24", "");
    let work = tempfile::tempdir().unwrap();
    let node = copy_example("node-hello", work.path());
    let out = site.build_ok("node-hello", &node);
    assert!(out.contains("Node.js app detected") && out.contains("npm ci"), "{out}");
    assert_eq!(site.answer("berth/app-node-hello:latest", "node-web-1"), "Hello from Node.js\n");
    // No dependencies at all, and Heroku's heroku-postbuild instead of build.
    let bare = work.path().join("bare");
    fs::create_dir_all(&bare).unwrap();
    fs::write(
        bare.join("package.json"),
        r#"{"name": "bare", "main": "index.js", "scripts": {"heroku-postbuild": "echo postbuild ran > built.txt", "build": "false"}}"#,
    )
    .unwrap();
    fs::write(
        bare.join("index.js"),
        "const fs = require('fs');\nrequire('http').createServer((q, r) => r.end('Bare ' + fs.readFileSync('built.txt'))).listen(process.env.PORT);\n",
    )
    .unwrap();
    let out = site.build_ok("bare", &bare);
    assert!(out.contains("Running heroku-postbuild"), "{out}");
    assert_eq!(site.answer("berth/app-bare:latest", "bare-web-1"), "Bare postbuild ran\n");
    let static_site = copy_example("static-site", work.path());
    let out = site.build_ok("static-site", &static_site);
    assert!(out.contains("Static app detected"), "{out}");
    assert!(site.answer("berth/app-static-site:latest", "static-web-1").contains("A static site served by berth"));

    // A monorepo: builder:set build-dir picks the subdirectory, app-json:set
    // appjson-path the app.json (its formation lands in the image's label).
    let mono = work.path().join("mono");
    fs::create_dir_all(mono.join("sites")).unwrap();
    copy_example("static-site", &mono.join("sites"));
    fs::create_dir_all(mono.join("sites/static-site/.berth")).unwrap();
    fs::write(mono.join("sites/static-site/.berth/app.json"), r#"{"formation": {"web": {"quantity": 3}}}"#).unwrap();
    std::os::unix::fs::symlink("/etc", mono.join("sites/escape")).unwrap();
    site.host.ok(["apps:create", "mono"]);
    site.host.ok(["builder:set", "mono", "build-dir", "sites/escape"]);
    let refused = site.build("mono", &mono);
    assert!(refused.code != 0 && refused.stderr.contains("build dir sites/escape is not a directory"), "{}", refused.stderr);
    site.host.ok(["builder:set", "mono", "build-dir", "sites/static-site"]);
    site.host.ok(["app-json:set", "mono", "appjson-path", ".berth/app.json"]);
    let out = site.build_ok("mono", &mono);
    assert!(out.contains("Static app detected"), "{out}");
    let inspect = site.host.ok(["images:inspect", "berth/app-mono:latest"]).out();
    assert!(inspect.contains(r#"\"quantity\":3"#) || inspect.contains(r#"\"web\":3"#), "{inspect}");
    assert!(site.answer("berth/app-mono:latest", "mono-web-1").contains("A static site served by berth"));
}

/// A Node app asking for `engines`; it answers with the Node.js it runs on.
fn node_app(dir: &Path, engines: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("package.json"), format!(r#"{{"name": "versioned", "engines": {{"node": "{engines}"}}}}"#)).unwrap();
    fs::write(dir.join("index.js"), "require('http').createServer((q, r) => r.end(process.version)).listen(process.env.PORT);\n").unwrap();
    fs::write(dir.join("Procfile"), "web: node index.js\n").unwrap();
    dir.to_owned()
}

#[test]
#[ignore = "needs root: builds need root"]
fn engines_node_22_runs_node_22_from_the_npm_registry() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-node22", "10.215.9.0/24", "");
    let work = tempfile::tempdir().unwrap();
    let app = node_app(&work.path().join("n22"), "22.x");
    let out = site.build_ok("n22", &app);
    assert!(out.contains("-----> Fetching Node.js 22.") && out.contains("integrity checked"), "{out}");
    assert!(out.contains("-----> Using Node.js v22."), "{out}");
    assert!(site.answer("berth/app-n22:latest", "n22-web").starts_with("v22."));
    // The host keeps it: a second app asking the same fetches nothing.
    let again = node_app(&work.path().join("again"), ">=22 <23");
    let out = site.build_ok("again", &again);
    assert!(!out.contains("Fetching Node.js") && out.contains("-----> Using Node.js v22."), "{out}");
    // A range npm cannot read stops the build with one line.
    let bad = node_app(&work.path().join("bad"), "twenty-two");
    let run = site.build("bad", &bad);
    assert!(run.code != 0 && run.out().contains("package.json's engines.node is not a version range npm reads"), "{}", run.out());

    // A bundle carries the fetched Node.js to a host that never fetched
    // it, whose builds then need no registry.
    let kit = work.path().join("kit.tar");
    site.host.ok(["bundle:create", kit.to_str().unwrap()]);
    fs::remove_dir_all(site.host.path().join("runtimes")).unwrap();
    assert!(site.host.ok(["bundle:load", kit.to_str().unwrap()]).out().contains("-----> Added Node.js 22."));
    let offline = site
        .host
        .command(["builds:create", "again", again.to_str().unwrap()])
        .env("BERTH_BUILDPACKS", repo().join("buildpacks"))
        .env("BERTH_NPM_REGISTRY", "https://127.0.0.1:9")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&offline.stdout);
    assert!(offline.status.success() && out.contains("-----> Using Node.js v22."), "{out}");
}

#[test]
#[ignore = "needs root: builds need root"]
fn buildpacks_from_git_and_dot_buildpacks_run_in_order() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-git", "10.215.3.0/24", "");
    let work = tempfile::tempdir().unwrap();
    // Two buildpacks in local git repositories: the first exports a variable
    // the second must see.
    let mut urls = Vec::new();
    for (name, compile) in [
        (
            "first",
            "echo '-----> first buildpack compiling'; echo 'export FROM_FIRST=hello-from-first' > \"$(dirname \"$0\")/../export\"; echo one > \"$1/first.txt\"",
        ),
        ("second", "echo \"-----> second buildpack sees FROM_FIRST=$FROM_FIRST\"; test -f \"$1/first.txt\""),
    ] {
        let src = work.path().join(format!("{name}-src"));
        write_buildpack(&src, &format!("echo {name}"), compile);
        let git = |args: &[&str]| assert!(Command::new("git").args(args).current_dir(&src).status().unwrap().success());
        git(&["init", "-q", "-b", "main"]);
        git(&["add", "."]);
        git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "buildpack"]);
        let bare = work.path().join(format!("{name}.git"));
        assert!(Command::new("git").args(["clone", "-q", "--bare"]).arg(&src).arg(&bare).status().unwrap().success());
        urls.push(bare.display().to_string());
    }
    let app = work.path().join("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("Procfile"), "web: python3 -m http.server $PORT\n").unwrap();
    // Pushed code may not point root at the host's own repositories ...
    fs::write(app.join(".buildpacks"), format!("{}\n", urls[0])).unwrap();
    let refused = site.build("multi", &app);
    assert!(refused.code != 0 && refused.stderr.contains("only an admin"), "{}{}", refused.out(), refused.stderr);
    fs::remove_file(app.join(".buildpacks")).unwrap();
    // ... an admin may.
    site.host.ok(["buildpacks:set", "multi", &urls[0], &urls[1]]);
    let out = site.build_ok("multi", &app);
    let first = out.find("first buildpack compiling").expect(&out);
    let second = out.find("second buildpack sees FROM_FIRST=hello-from-first").expect(&out);
    assert!(first < second, "{out}");
    assert!(out.contains(&format!("Fetching buildpack {}", urls[0])), "{out}");
    // The second build uses the cached clone.
    let again = site.build_ok("multi", &app);
    assert!(again.contains(&format!("Using cached buildpack {}", urls[0])), "{again}");
}

#[test]
#[ignore = "needs root: builds need root"]
fn an_offline_build_uses_vendored_wheels_with_no_network() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-offline", "10.215.4.0/24", "");
    let work = tempfile::tempdir().unwrap();
    let app = copy_example("catmeow", work.path());
    let wheels = app.join("vendor/wheels");
    // Wheels for the stack's Python (3.11, manylinux x86_64), fetched on the host.
    let download = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--platform",
            "manylinux2014_x86_64",
            "-d",
        ])
        .arg(&wheels)
        .arg("flask")
        .env_remove("PIP_FIND_LINKS")
        .output()
        .unwrap();
    assert!(download.status.success(), "pip download: {}", String::from_utf8_lossy(&download.stderr));
    site.host.ok(["apps:create", "offline"]);
    site.host.ok(["builds:set", "offline", "network", "none"]);
    let out = site.build_ok("offline", &app);
    assert!(out.contains("Installing from vendor/wheels (offline)"), "{out}");
    assert_eq!(site.answer("berth/app-offline:latest", "offline-web-1"), "Cat dreams meow..\n");
}

#[test]
#[ignore = "needs root: builds need root"]
fn failed_builds_say_why_keep_their_log_and_make_no_image() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-fail", "10.215.5.0/24", "");
    let work = tempfile::tempdir().unwrap();
    let check = |app: &str, dir: &Path, message: &str| {
        let run = site.build(app, dir);
        assert_eq!(run.code, 1, "{app}: {}{}", run.out(), run.stderr);
        assert!(run.stderr.contains(message), "{app}: expected {message:?} in {}", run.stderr);
        let output = site.host.ok(["builds:output", app]).out();
        assert!(output.contains("Build failed"), "{app}: log not kept: {output}");
        let images = site.host.ok(["images:list"]).out();
        assert!(!images.contains(&format!("berth/app-{app}")), "{app} made an image: {images}");
    };

    let nothing = work.path().join("nothing");
    fs::create_dir_all(&nothing).unwrap();
    fs::write(nothing.join("README"), "no app here").unwrap();
    check("nothing", &nothing, "no buildpack detected this app");

    let bp = work.path().join("bp-fails");
    write_buildpack(&bp, "echo Failing", "echo 'compile breaks'; exit 1");
    site.host.ok(["apps:create", "fails"]);
    site.berth(&["buildpacks:set", "fails", bp.to_str().unwrap()]);
    check("fails", &nothing, "the Failing buildpack failed");

    let hangs = work.path().join("bp-hangs");
    write_buildpack(&hangs, "echo Hanging", "echo 'about to hang'; sleep 600");
    site.host.ok(["apps:create", "hangs"]);
    site.berth(&["buildpacks:set", "hangs", hangs.to_str().unwrap()]);
    site.host.ok(["builds:set", "hangs", "timeout", "3"]);
    check("hangs", &nothing, "ran past its limit of 3 s");

    let garbage = work.path().join("garbage");
    fs::create_dir_all(&garbage).unwrap();
    fs::write(garbage.join("Procfile"), "web: ok\nthis line is garbage\n").unwrap();
    check("garbage", &garbage, "Procfile line 2");

    // A buildpack that writes outside /app, /cache and /tmp finds them read only.
    let writer = work.path().join("bp-writer");
    write_buildpack(
        &writer,
        "echo Writer",
        "for p in /usr/local/pwned /etc/pwned /home/app/pwned /buildpacks/pwned /env/pwned; do if touch \"$p\" 2>/dev/null; then echo \"WROTE $p\"; exit 1; fi; done; touch /app/ok /cache/ok /tmp/ok && echo 'outside is read only'",
    );
    site.host.ok(["apps:create", "writer"]);
    site.berth(&["buildpacks:set", "writer", writer.to_str().unwrap()]);
    fs::write(nothing.join("Procfile"), "web: true\n").unwrap();
    let run = site.build("writer", &nothing);
    assert_eq!(run.code, 0, "{}{}", run.out(), run.stderr);
    assert!(run.out().contains("outside is read only"), "{}", run.out());
}

#[test]
#[ignore = "needs root: builds need root"]
fn apps_locked_with_uv_poetry_and_pipenv_install_their_dependencies_not_themselves() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-locks", "10.215.7.0/24", "");
    let work = tempfile::tempdir().unwrap();
    let fixtures = repo().join("tests/apps/python-locks");
    for (tool, lock) in [("uv", "uv.lock"), ("poetry", "poetry.lock"), ("pipenv", "Pipfile.lock")] {
        // The same app under each tool: its code, and the tool's files.
        let app = work.path().join(tool);
        assert!(Command::new("cp").arg("-a").arg(fixtures.join(tool)).arg(&app).status().unwrap().success());
        for shared in ["app.py", "Procfile"] {
            fs::copy(fixtures.join(shared), app.join(shared)).unwrap();
        }
        let name = format!("locked-{tool}");
        if tool == "uv" {
            // A Python the stack does not have: one line naming what it has.
            fs::write(app.join(".python-version"), "3.14\n").unwrap();
            let refused = site.build(&name, &app);
            let says = ".python-version asks for Python 3.14, but the bookworm stack offers Python 3.11";
            assert!(refused.code != 0 && refused.out().contains(says), "{}{}", refused.out(), refused.stderr);
            fs::write(app.join(".python-version"), "3.11\n").unwrap();
        }
        let out = site.build_ok(&name, &app);
        assert!(out.contains(&format!("Installing the dependencies pinned in {lock} with uv")), "{out}");
        assert!(out.contains("flask==3.0.3"), "the locked version: {out}");
        assert!(!out.contains("pytest"), "dev dependencies stay out: {out}");
        let image = format!("berth/app-{name}:latest");
        assert_eq!(site.answer(&image, &format!("{name}-web")), format!("locked with {tool}\n"));
    }
}

#[test]
#[ignore = "needs root: builds need root"]
fn python_3_13_asked_for_builds_on_the_trixie_stack() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-trixie", "10.215.8.0/24", "");
    let built = site
        .host
        .command(["stacks:build", "trixie", "--cache", common::site::STACK_CACHE])
        .env("BERTH_STACKS", repo().join("stacks"))
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let work = tempfile::tempdir().unwrap();
    let fixtures = repo().join("tests/apps/python-locks");
    let app = work.path().join("app");
    assert!(Command::new("cp").arg("-a").arg(fixtures.join("uv")).arg(&app).status().unwrap().success());
    for shared in ["app.py", "Procfile"] {
        fs::copy(fixtures.join(shared), app.join(shared)).unwrap();
    }
    fs::write(app.join(".python-version"), "3.13\n").unwrap();
    site.host.ok(["apps:create", "py313"]);
    let refused = site.build("py313", &app);
    // The one line names every stack's Python, and the one that fits.
    let says = |run: &common::Run, what: &str| assert!(run.code != 0 && run.out().contains(what), "{what}: {}{}", run.out(), run.stderr);
    says(&refused, "the bookworm stack offers Python 3.11");
    says(&refused, "(this host's stacks: bookworm 3.11.2, trixie 3.13.");
    says(&refused, "the trixie stack fits: buildpacks:set-property APP stack trixie");
    fs::write(app.join(".python-version"), "3.14\n").unwrap();
    says(&site.build("py313", &app), "none fits, so change the request");
    fs::write(app.join(".python-version"), "3.13\n").unwrap();
    site.host.ok(["buildpacks:set-property", "py313", "stack", "trixie"]);
    let out = site.build_ok("py313", &app);
    assert!(out.contains("Using the stack's Python 3.13") && out.contains("with the trixie stack"), "{out}");
    assert_eq!(site.answer("berth/app-py313:latest", "py313-web"), "locked with uv\n");
}
