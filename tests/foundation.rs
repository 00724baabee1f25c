//! The foundation as a user meets it: apps and config through the real binary.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use common::{Host, assert_clear_failure};

#[test]
fn apps_create_list_rename_destroy() {
    let host = Host::new();
    host.ok(["apps:create", "catmeow"]);
    host.ok(["apps:create", "dogwoof"]);
    assert_eq!(host.ok(["apps:list"]).out(), "=====> My Apps\ncatmeow\ndogwoof\n");
    assert_eq!(host.ok(["apps:list", "--format", "json"]).out().split_whitespace().collect::<String>(), r#"["catmeow","dogwoof"]"#);
    host.ok(["apps:exists", "catmeow"]);
    assert_eq!(host.run(["apps:exists", "nope"]).code, 1);

    host.ok(["config:set", "catmeow", "GREETING=meow"]);
    host.ok(["apps:rename", "catmeow", "kitten"]);
    assert_eq!(host.ok(["config:get", "kitten", "GREETING"]).out(), "meow\n");
    assert_eq!(host.run(["apps:exists", "catmeow"]).code, 1);
    let report = host.ok(["apps:report", "kitten", "--format", "json"]).out();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["name"], "kitten");
    assert_eq!(report["config_vars"], 1);

    // Without --force the name must be typed again.
    let wrong = host.run_with_stdin(["apps:destroy", "kitten"], b"dogwoof\n");
    assert_eq!(wrong.code, 1);
    host.ok(["apps:exists", "kitten"]);
    let typed = host.run_with_stdin(["apps:destroy", "kitten"], b"kitten\n");
    assert_eq!(typed.code, 0, "{}", typed.stderr);
    host.ok(["apps:destroy", "dogwoof", "--force"]);
    assert_eq!(host.ok(["apps:list"]).out(), "=====> My Apps\n");
    assert!(!host.path().join("apps/kitten").exists());
}

fn tricky_values() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("SPACES", b"  two  spaces  ".to_vec()),
        ("QUOTES", br#"it's "quoted" and \escaped\"#.to_vec()),
        ("EQUALS", b"a=b==c".to_vec()),
        ("NEWLINES", b"line one\nline two\n\nend\n".to_vec()),
        ("UNICODE", "chat \u{1F431} ünïcødé".as_bytes().to_vec()),
        ("BIG", "x".repeat(32 * 1024).into_bytes()),
        ("EMPTY", Vec::new()),
        ("DOLLAR", b"$(id) `id` ${HOME}".to_vec()),
    ]
}

#[test]
fn config_values_round_trip_exactly() {
    let host = Host::new();
    host.ok(["apps:create", "catmeow"]);
    let mut args: Vec<OsString> = vec!["config:set".into(), "catmeow".into()];
    for (key, value) in tricky_values() {
        let mut pair = format!("{key}=").into_bytes();
        pair.extend_from_slice(&value);
        args.push(OsString::from_vec(pair));
    }
    host.ok(&args);
    for (key, value) in tricky_values() {
        let got = host.ok(["config:get", "catmeow", key]).stdout;
        assert_eq!(&got[..got.len() - 1], &value[..], "{key}");
    }
    let mut keys: Vec<&str> = tricky_values().iter().map(|(k, _)| *k).collect();
    keys.sort();
    assert_eq!(host.ok(["config:keys", "catmeow"]).out(), keys.iter().map(|k| format!("{k}\n")).collect::<String>());

    // JSON holds them exactly too.
    let json: serde_json::Value = serde_json::from_str(&host.ok(["config:show", "catmeow", "--format", "json"]).out()).unwrap();
    for (key, value) in tricky_values() {
        assert_eq!(json[key].as_str().unwrap().as_bytes(), &value[..], "{key}");
    }

    // The --shell form evaluates back to the same bytes in a real shell.
    let shell = host.ok(["config:show", "catmeow", "--shell"]).stdout;
    for (key, value) in tricky_values() {
        let script = format!("eval \"$(cat)\"; printf %s \"${key}\"");
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&shell)?;
                child.wait_with_output()
            })
            .unwrap();
        assert_eq!(out.stdout, value, "{key} through --shell");
    }

    // --encoded takes base64 values.
    host.ok(["config:set", "catmeow", "--encoded", "B64=aGVsbG8gd29ybGQ="]);
    assert_eq!(host.ok(["config:get", "catmeow", "B64"]).out(), "hello world\n");

    host.ok(["config:unset", "catmeow", "BIG", "EMPTY"]);
    assert_eq!(host.run(["config:get", "catmeow", "BIG"]).code, 1);
    host.ok(["config:get", "catmeow", "UNICODE"]);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let host = Host::new();
    host.ok(["apps:create", "catmeow"]);
    host.ok(["config:set", "catmeow", "KEEP=me"]);
    let before = host.snapshot();

    let long = "a".repeat(64);
    let bad_names = ["Cat", "-x", "a/b", "../etc", "a b", "x;rm -rf /", "$(id)", &long, "", "café", "ünï"];
    for name in bad_names {
        for command in [
            &["apps:create", name][..],
            &["config:set", name, "A=b"],
            &["apps:rename", "catmeow", name],
            &["apps:destroy", name, "--force"],
        ] {
            let run = host.run(command);
            assert_clear_failure(&run, &format!("{command:?}"));
        }
    }
    let run = host.run(["apps:create", "Cat"]);
    assert_eq!(
        run.stderr,
        "berth: app \"Cat\" is not a valid name: use a-z, 0-9 and -, start with a letter or digit, at most 63 characters\n"
    );

    for pair in ["NOEQUALS", "=value", "1KEY=x", "KEY-X=x", "K Y=x", "KÉ=x", "A.B=c"] {
        let run = host.run(["config:set", "catmeow", "GOOD=1", pair]);
        assert_clear_failure(&run, pair);
    }
    for command in [
        &["config:set", "ghost", "A=b"][..],
        &["config:get", "ghost", "A"],
        &["config:unset", "ghost", "A"],
        &["config:show", "ghost"],
        &["config:keys", "ghost"],
        &["apps:rename", "ghost", "spirit"],
        &["apps:destroy", "ghost", "--force"],
        &["apps:report", "ghost"],
        &["apps:create", "catmeow"],
        &["config:set", "catmeow"],
        &["config:get", "catmeow"],
        &["no:such-command"],
        &["apps:list", "--bogus"],
    ] {
        let run = host.run(command);
        assert_clear_failure(&run, &format!("{command:?}"));
    }
    assert_eq!(host.run(["apps:create", "catmeow"]).stderr, "berth: app catmeow already exists\n");
    assert_eq!(host.run(["no:such-command"]).code, 2);
    assert_eq!(host.snapshot(), before, "a refused command changed the state");
}

#[test]
fn concurrent_config_sets_all_land() {
    let host = Host::new();
    host.ok(["apps:create", "catmeow"]);
    let children: Vec<_> = (0..50)
        .map(|i| {
            host.command(["config:set".to_owned(), "catmeow".to_owned(), format!("KEY_{i}=value {i}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let keys = host.ok(["config:keys", "catmeow"]).out();
    assert_eq!(keys.lines().count(), 50, "{keys}");
    for i in 0..50 {
        assert_eq!(host.ok(["config:get", "catmeow", &format!("KEY_{i}")]).out(), format!("value {i}\n"));
    }
}

#[test]
fn help_lists_namespaces_and_commands() {
    let host = Host::new();
    let all = host.ok(["help"]).out();
    for command in ["apps:create", "config:set", "config:show"] {
        assert!(all.contains(command), "{command} missing from help");
    }
    let apps = host.ok(["help", "apps"]).out();
    assert!(apps.contains("apps:rename") && !apps.contains("config:set"));
    assert!(host.ok(["help", "config:set"]).out().starts_with("usage: berth config:set APP|--global KEY=VALUE"));
    assert_eq!(host.run(["help", "nothing"]).code, 2);
}

#[test]
fn namespaces_typos_and_the_app_flag_as_dokku_users_type_them() {
    let host = Host::new();
    // `berth apps` and `berth apps:help` list the namespace, as `dokku apps` does.
    for topic in ["apps", "apps:help"] {
        let listed = host.ok([topic]).out();
        assert!(listed.contains("apps:create APP") && listed.contains("apps:destroy") && !listed.contains("config:set"), "{listed}");
    }
    let typo = host.run(["apps:lst"]);
    assert_eq!(typo.code, 2);
    assert!(typo.stderr.contains("did you mean apps:list?"), "{}", typo.stderr);
    let flag = host.run(["config:set", "--no-restrat", "cat", "A=1"]);
    assert!(flag.code == 2 && flag.stderr.contains("did you mean --no-restart?"), "{}", flag.stderr);
    // `--app APP` anywhere stands for the app argument.
    host.ok(["apps:create", "--app", "cat"]);
    host.ok(["config:set", "--no-restart", "GREETING=meow", "--app", "cat"]);
    assert_eq!(host.ok(["config:get", "--app", "cat", "GREETING"]).out(), "meow\n");
    // `berth config APP` is config:show; `berth --force COMMAND` is the command's --force.
    assert!(host.ok(["config", "cat"]).out().contains("GREETING: meow"));
    host.ok(["--force", "apps:destroy", "cat"]);
    assert_eq!(host.run(["apps:exists", "cat"]).code, 1);
}

#[test]
fn global_settings_and_single_report_fields_as_dokku_scripts_read_them() {
    let host = Host::new();
    host.ok(["apps:create", "cat"]);
    let field = |args: &[&str]| host.ok(args).out().trim_end_matches('\n').to_owned();

    // ps: the global default, an app's own value over it, the one in effect.
    host.ok(["ps:set", "--global", "restart-policy", "on-failure:5"]);
    assert_eq!(field(&["ps:report", "cat", "--ps-computed-restart-policy"]), "on-failure:5");
    host.ok(["ps:set", "cat", "restart-policy", "always"]);
    assert_eq!(field(&["ps:report", "cat", "--ps-computed-restart-policy"]), "always");
    assert_eq!(field(&["ps:report", "cat", "--ps-global-restart-policy"]), "on-failure:5");
    assert_eq!(field(&["ps:report", "--global", "--ps-global-restart-policy"]), "on-failure:5");
    assert_eq!(field(&["ps:report", "--app", "cat", "--deployed"]), "false");
    let typo = host.run(["ps:report", "cat", "--ps-restart-polcy"]);
    assert!(typo.code == 1 && typo.stderr.contains("did you mean --ps-restart-policy?"), "{}", typo.stderr);
    let config = std::fs::read(host.path().join("config.toml")).unwrap();
    let bad = host.run(["ps:set", "--global", "restart-policy", "sometimes"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert_eq!(std::fs::read(host.path().join("config.toml")).unwrap(), config, "a refused global changed config.toml");

    // Dokku's padding: labels from the flag names, sorted, in one column.
    let table = host.ok(["ps:report", "cat"]).out();
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("=====> cat ps information"));
    assert_eq!(lines.next(), Some("       Deployed:                         false"));
    let json: serde_json::Value = serde_json::from_str(&host.ok(["ps:report", "cat", "--format", "json"]).out()).unwrap();
    assert_eq!(json["ps-restart-policy"], "always");

    // git, checks, nginx, registry: --global set, read back per app.
    host.ok(["git:set", "--global", "deploy-branch", "trunk"]);
    assert_eq!(field(&["git:report", "cat", "--git-computed-deploy-branch"]), "trunk");
    host.ok(["git:set", "cat", "deploy-branch", "main"]);
    assert_eq!(field(&["git:report", "cat", "--git-computed-deploy-branch"]), "main");
    host.ok(["checks:set", "--global", "wait-to-retire", "30"]);
    assert_eq!(field(&["checks:report", "cat", "--checks-computed-wait-to-retire"]), "30");
    assert_eq!(field(&["checks:report", "cat", "--checks-disabled-list"]), "none");
    host.ok(["nginx:set", "--global", "client-max-body-size", "50m"]);
    assert_eq!(field(&["nginx:report", "cat", "--nginx-computed-client-max-body-size"]), "50m");
    host.ok(["registry:set", "--global", "server", "registry.example.test"]);
    assert!(std::fs::read_to_string(host.path().join("config.toml")).unwrap().contains("registry.example.test"));
    assert!(field(&["apps:report", "cat", "--app-dir"]).ends_with("/apps/cat"));

    // Global config vars: 0600, read and removed like an app's.
    host.ok(["config:set", "--global", "GREETING=meow"]);
    assert_eq!(field(&["config:get", "--global", "GREETING"]), "meow");
    assert!(host.ok(["config:show", "--global"]).out().contains("GREETING: meow"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(host.path().join("env")).unwrap().permissions().mode() & 0o777, 0o600);
    host.ok(["config:unset", "--global", "GREETING"]);
    assert_eq!(host.run(["config:get", "--global", "GREETING"]).code, 1);

    // logs: Dokku's max-size, app over global over 10m; unlimited; unset.
    assert_eq!(field(&["logs:report", "cat", "--logs-computed-max-size"]), "10m");
    host.ok(["logs:set", "--global", "max-size", "unlimited"]);
    assert_eq!(field(&["logs:report", "cat", "--logs-computed-max-size"]), "unlimited");
    host.ok(["logs:set", "cat", "max-size", "20m"]);
    assert_eq!(field(&["logs:report", "cat", "--logs-max-size"]), "20m");
    assert_eq!(field(&["logs:report", "--global", "--logs-global-max-size"]), "unlimited");
    let config = std::fs::read(host.path().join("config.toml")).unwrap();
    let bad = host.run(["logs:set", "--global", "max-size", "20x"]);
    assert!(bad.code == 2 && bad.stderr.contains("max-size takes a number"), "{}", bad.stderr);
    assert_eq!(std::fs::read(host.path().join("config.toml")).unwrap(), config, "a refused size changed config.toml");
    host.ok(["logs:set", "cat", "max-size"]);
    assert_eq!(field(&["logs:report", "cat", "--logs-computed-max-size"]), "unlimited");
    assert!(host.ok(["logs:report"]).out().contains("=====> cat logs information"));
    assert_eq!(host.ok(["logs:failed", "--all"]).out(), "");

    // letsencrypt: Dokku's email at --global, the app's own grace period.
    host.ok(["letsencrypt:set", "--global", "email", "ops@example.test"]);
    host.ok(["letsencrypt:set", "cat", "graceperiod", "86400"]);
    assert_eq!(field(&["letsencrypt:report", "cat", "--letsencrypt-computed-email"]), "ops@example.test");
    assert_eq!(field(&["letsencrypt:report", "cat", "--letsencrypt-computed-graceperiod"]), "86400");
    assert_eq!(field(&["letsencrypt:report", "--global", "--letsencrypt-computed-graceperiod"]), "2592000");
    assert_eq!(field(&["letsencrypt:report", "cat", "--letsencrypt-active"]), "false");
    assert_eq!(host.run(["letsencrypt:set", "cat", "email", "not-an-address"]).code, 2);

    // builds: retention app over global over 20; the latest build's fields are empty before any.
    assert_eq!(field(&["builds:report", "cat", "--builds-computed-retention"]), "20");
    host.ok(["builds:set", "--global", "retention", "5"]);
    assert_eq!(field(&["builds:report", "cat", "--builds-computed-retention"]), "5");
    host.ok(["builds:set", "cat", "retention", "3"]);
    assert_eq!(field(&["builds:report", "cat", "--builds-retention"]), "3");
    assert_eq!(field(&["builds:report", "--global", "--builds-global-retention"]), "5");
    assert_eq!(field(&["builds:report", "cat", "--build-status"]), "");
    let bad = host.run(["builds:set", "cat", "retention", "0"]);
    assert!(bad.code == 2 && bad.stderr.contains("retention \"0\" is not 1 to 10000"), "{}", bad.stderr);
    assert_eq!(field(&["builds:report", "cat", "--builds-retention"]), "3");
    host.ok(["builds:set", "cat", "retention"]);
    assert_eq!(field(&["builds:report", "cat", "--builds-computed-retention"]), "5");
    assert_eq!(host.ok(["builds:list", "cat", "--kind", "deploy", "--format", "json"]).out().trim(), "[]");
    assert!(host.ok(["builds:prune", "--all-apps"]).out().contains("cat: 0 build records pruned"));
    assert_eq!(host.run(["builds:info", "cat", "1"]).code, 1);
}

#[test]
fn storage_entries_as_dokku_registers_them() {
    let host = Host::new();
    let field = |args: &[&str]| host.ok(args).out().trim_end_matches('\n').to_owned();
    host.ok(["storage:create", "data", "--mode", "0750", "--chown", "false"]);
    let dir = host.path().join("storage/data");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, 0o750);
    host.ok(["storage:set", "data", "mode", "0700"]);
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, 0o700);
    let info: serde_json::Value = serde_json::from_str(&host.ok(["storage:info", "data", "--format", "json"]).out()).unwrap();
    assert_eq!((info["mode"].as_str(), info["chown"].as_str()), (Some("0700"), Some("false")));
    assert!(field(&["storage:list-entries"]).contains("data"));
    let bad = host.run(["storage:set", "data", "size", "1Gi"]);
    assert!(bad.code == 2 && bad.stderr.contains("k3s property"), "{}", bad.stderr);
    host.ok(["storage:set", "data", "reclaim-policy", "Delete"]);
    let typed = host.run_with_stdin(["storage:destroy", "data"], b"nope\n");
    assert!(typed.code == 1 && dir.exists(), "{}", typed.stderr);
    host.ok(["storage:destroy", "data", "--force"]);
    assert!(!dir.exists(), "reclaim-policy Delete removes the directory");
    assert_eq!(field(&["storage:list-entries", "--format", "json"]), "[]");
}

/// The generated table of docs/COMMANDS.md, as the file holds it.
fn documented_table() -> String {
    let doc = std::fs::read_to_string(common::push_host::repo().join("docs/COMMANDS.md")).unwrap();
    let begin = "<!-- generated by scripts/commands-md.sh from the command tables: do not edit -->\n";
    let start = doc.find(begin).expect("the generated table's start marker") + begin.len();
    let end = doc.find("<!-- end of generated table -->").expect("the end marker");
    doc[start..end].to_owned()
}

#[test]
fn commands_md_is_the_command_tables_and_names_real_dokku_commands() {
    let host = Host::new();
    let generated = host.ok(["help", "--markdown"]).out();
    assert!(documented_table() == generated, "docs/COMMANDS.md is stale: run scripts/commands-md.sh");
    let listed = std::fs::read_to_string(common::push_host::repo().join("tests/dokku/commands.txt")).unwrap();
    let dokku: std::collections::HashSet<&str> = listed.lines().filter(|l| !l.starts_with('#')).collect();
    let mut same = 0;
    for row in generated.lines().skip(2) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let command = cells[0].trim_start_matches("| `").split([' ', '`']).next().unwrap();
        let theirs = cells.last().unwrap().trim_end_matches(" |");
        let named = match theirs {
            "same" => command,
            t if t.starts_with('`') => t.trim_matches('`').split(' ').next().unwrap(),
            t => {
                assert!(t.starts_with("none: "), "{row}");
                continue;
            }
        };
        assert!(dokku.contains(named), "{command}: Dokku has no {named}");
        same += 1;
    }
    assert!(same >= 80, "only {same} commands match Dokku's");
}

#[test]
fn deploy_lock_config_export_and_inspection_commands() {
    let host = Host::new();
    host.ok(["apps:create", "cat"]);
    // apps:lock holds deploys back, and says so.
    host.ok(["apps:lock", "cat"]);
    host.ok(["apps:locked", "cat"]);
    assert_eq!(host.ok(["apps:report", "cat", "--app-locked"]).out(), "true\n");
    let tar = {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "Procfile", &b"x\n\n"[..]).unwrap();
        builder.into_inner().unwrap()
    };
    let refused = host.run_with_stdin(["git:from-archive", "cat", "-"], &tar);
    assert!(refused.code == 1 && refused.stderr.contains("app cat is locked for deploys"), "{}", refused.stderr);
    host.ok(["apps:unlock", "cat"]);
    assert_eq!(host.run(["apps:locked", "cat"]).code, 1);

    // config:export in Dokku's formats; config:clear empties.
    host.ok(["config:set", "cat", "--no-restart", "A=it's", "B=2"]);
    assert_eq!(host.ok(["config:export", "cat"]).out(), "export A='it'\\''s'\nexport B='2'\n");
    assert_eq!(host.ok(["config:export", "cat", "--format", "envfile"]).out(), "A='it'\\''s'\nB='2'\n");
    assert_eq!(host.ok(["config:export", "cat", "--format", "json"]).out(), "{\"A\":\"it's\",\"B\":\"2\"}\n");
    assert_eq!(host.run(["config:export", "cat", "--format", "docker-args"]).code, 2);
    host.ok(["config:clear", "cat", "--no-restart"]);
    assert_eq!(host.ok(["config:keys", "cat"]).out(), "");

    // Nothing runs yet: empty lists, not errors.
    assert_eq!(host.ok(["ps:inspect", "cat"]).out().trim(), "[]");
    assert_eq!(host.ok(["run:list", "cat", "--format", "json"]).out().trim(), "[]");
}

#[test]
fn completions_and_man_page_come_from_the_command_tables() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let bash = dir.path().join("berth.bash");
    std::fs::write(&bash, host.ok(["help", "--completions", "bash"]).out()).unwrap();
    // Real bash completes as a user's TAB would.
    let complete = |words: &str, cword: &str| {
        let line = format!("source \"$1\"; COMP_WORDS=({words}); COMP_CWORD={cword}; _berth; printf '%s\\n' \"${{COMPREPLY[@]}}\"");
        let out = std::process::Command::new("bash").args(["-c", &line, "bash"]).arg(&bash).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("berth storage:cr", "1"), "storage:create\n");
    assert_eq!(complete("berth storage:create data --mo", "3"), "--mode\n");
    let zsh = dir.path().join("_berth");
    std::fs::write(&zsh, host.ok(["help", "--completions", "zsh"]).out()).unwrap();
    let parsed = std::process::Command::new("zsh").arg("-n").arg(&zsh).output().unwrap();
    assert!(parsed.status.success(), "zsh refuses the script: {}", String::from_utf8_lossy(&parsed.stderr));
    let page = dir.path().join("berth.1");
    std::fs::write(&page, host.ok(["help", "--man"]).out()).unwrap();
    let man = std::process::Command::new("man").arg("-l").arg(&page).env("MANPAGER", "cat").env("MANWIDTH", "100").output().unwrap();
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success() && text.contains("storage:create NAME") && text.contains("BERTH_ROOT"), "{text}");
    assert_eq!(host.run(["help", "--completions", "fish"]).code, 2);
}

#[test]
fn the_event_log_records_an_apps_life_when_on() {
    let host = Host::new();
    host.ok(["apps:create", "quiet"]);
    assert!(host.run(["events"]).stderr.contains("events:on"), "nothing is logged while off");
    host.ok(["events:on"]);
    assert!(host.ok(["events:list"]).out().contains("post-deploy"));
    host.ok(["apps:create", "cat"]);
    host.ok(["config:set", "cat", "--no-restart", "A=1"]);
    host.ok(["apps:rename", "cat", "dog"]);
    host.ok(["apps:destroy", "dog", "--force"]);
    host.ok(["events:off"]);
    host.ok(["apps:destroy", "quiet", "--force"]);
    let log = host.ok(["events"]).out();
    let events: Vec<&str> = log.lines().map(|l| l.split("INVOKED: ").nth(1).unwrap_or(l)).collect();
    assert_eq!(events, ["post-create( cat )", "post-config-update( cat )", "post-app-rename( cat dog )", "post-delete( dog )"], "{log}");
}
