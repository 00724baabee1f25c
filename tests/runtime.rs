//! Containers as an operator meets them: started from the stack run image
//! through libcontainer, watched by a shim, reached over their bridge
//! address, limited by cgroups, and removed without a trace.

mod common;

use common::site::{Site, is_root};
use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

fn host_links() -> BTreeSet<String> {
    fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vb"))
        .collect()
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl").args(["-s", "-f", "-m", "2", url]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
#[ignore = "needs root: containers need root"]
fn a_container_serves_http_on_its_address_and_is_isolated() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-serve", "10.213.1.0/24", "");
    let id = site.run(&[
        "--id",
        "serve-web",
        "--name",
        "web.1",
        "--",
        "sh",
        "-c",
        "echo 'Cat dreams meow..' > /tmp/index.html && cd /tmp && exec python3 -m http.server 8000",
    ]);
    let info = site.wait_for(&id, "answered", |i| i["address"].is_string());
    let address = info["address"].as_str().unwrap().to_owned();
    assert!(address.starts_with("10.213.1."), "{address}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        if let Some(page) = curl(&format!("http://{address}:8000/index.html")) {
            break page;
        }
        assert!(Instant::now() < deadline, "never answered: {}", site.logs(&id));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(page, "Cat dreams meow..\n");
    assert!(site.logs(&id).contains("web.1 stderr:"), "request logged: {}", site.logs(&id));

    // Its own pid 1, no host processes, no privileges, no mounts, no modules.
    let probe = site.run(&[
        "--id",
        "serve-probe",
        "--restart",
        "no",
        "--",
        "sh",
        "-c",
        "echo pid1=$(cat /proc/1/comm); echo procs=$(ls /proc | grep -c '^[0-9]'); grep CapEff /proc/self/status; \
         mount -t tmpfs x /tmp 2>/dev/null; echo mount=$?; \
         python3 -c 'import ctypes; l=ctypes.CDLL(None, use_errno=True); r=l.syscall(175,0,0,0); print(\"init_module\", r, ctypes.get_errno())'; \
         echo written > /home/app/upper-only.txt",
    ]);
    site.wait_for(&probe, "finished", |i| i["status"] == "exited");
    let logs = site.logs(&probe);
    assert!(logs.contains("stdout: pid1=sh"), "{logs}");
    let procs: u32 = logs.split("procs=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(procs <= 4, "the container sees {procs} processes: {logs}");
    assert!(logs.contains("CapEff:\t0000000000000000"), "{logs}");
    assert!(!logs.contains("mount=0"), "{logs}");
    assert!(logs.contains("init_module -1 1"), "init_module must fail with EPERM: {logs}");

    // Even as root in the container: no CAP_SYS_ADMIN (bit 21), and mount is refused.
    let root_probe = site.run(&[
        "--id",
        "serve-root",
        "--restart",
        "no",
        "--user",
        "0:0",
        "--",
        "sh",
        "-c",
        "grep CapEff /proc/self/status; mount -t tmpfs x /mnt; echo mount=$?",
    ]);
    site.wait_for(&root_probe, "finished", |i| i["status"] == "exited");
    let logs = site.logs(&root_probe);
    let cap_eff = logs.split("CapEff:\t").nth(1).unwrap().split_whitespace().next().unwrap();
    let caps = u64::from_str_radix(cap_eff, 16).unwrap();
    assert_eq!(caps & (1 << 21), 0, "CAP_SYS_ADMIN in {cap_eff}");
    assert_eq!(caps & (1 << 12), 0, "CAP_NET_ADMIN in {cap_eff}");
    assert!(!logs.contains("mount=0"), "{logs}");

    // Writes land in the container's upper dir; the stack layer is unchanged.
    let upper = site.host.path().join("containers").join(&probe).join("upper/home/app/upper-only.txt");
    assert_eq!(fs::read_to_string(&upper).unwrap(), "written\n");
    let layer = site.host.ok(["images:unpack", "berth/stack-run:bookworm"]).out();
    assert!(!std::path::Path::new(layer.trim()).join("home/app/upper-only.txt").exists());
    site.host.ok(["store:fsck"]);
}

#[test]
#[ignore = "needs root: containers need root"]
fn restarts_with_backoff_records_oom_and_stops_after_the_timeout() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-restart", "10.213.2.0/24", "");
    let failing = site.run(&["--id", "restart-fail", "--restart", "on-failure:3", "--", "sh", "-c", "echo trying; exit 1"]);
    let info = site.wait_for(&failing, "gave up", |i| i["status"] == "exited" && i["restarts"] == 3);
    assert_eq!(info["last_exit_code"], 1);
    let logs = site.logs(&failing);
    for backoff in ["restarting in 100 ms", "restarting in 200 ms", "restarting in 400 ms"] {
        assert!(logs.contains(backoff), "{backoff} missing: {logs}");
    }
    assert_eq!(logs.matches("stdout: trying").count(), 4, "{logs}");

    let hog =
        site.run(&["--id", "restart-oom", "--memory", "32m", "--restart", "no", "--", "python3", "-c", "x = bytearray(200 * 1024 * 1024)"]);
    let info = site.wait_for(&hog, "was killed", |i| i["status"] == "exited");
    assert_eq!(info["oom_kills"], 1, "{info}");
    assert_eq!(info["last_exit_code"], 137, "{info}");
    assert!(site.logs(&hog).contains("OOM"));

    let stubborn =
        site.run(&["--id", "restart-stubborn", "--stop-timeout", "2", "--", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]);
    site.wait_for(&stubborn, "ran", |i| i["status"] == "running");
    site.host.ok(["containers:stop", &stubborn]);
    let info = site.info(&stubborn);
    assert_eq!(info["status"], "exited");
    assert_eq!(info["last_exit_code"], 137);
    assert!(site.logs(&stubborn).contains("stop timeout reached; sending SIGKILL"));
}

#[test]
#[ignore = "needs root: containers need root"]
fn survives_its_cli_and_cleans_up_after_a_killed_shim() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-orphan", "10.213.3.0/24", "");
    // Kill the CLI as soon as it is running: the container stays up.
    let mut cli = site
        .host
        .command(["containers:run", "berth/stack-run:bookworm", "--id", "orphan-web", "--", "python3", "-m", "http.server", "8000"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // "Right after start": as soon as the shim has recorded itself.
    let state_file = site.host.path().join("containers/orphan-web/state.json");
    while !fs::read_to_string(&state_file).is_ok_and(|s| s.contains("\"shim_pid\": ") && !s.contains("\"shim_pid\": null")) {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = cli.kill();
    let _ = cli.wait();
    let info = site.wait_for("orphan-web", "ran", |i| i["status"] == "running" && i["address"].is_string());
    let address = info["address"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while curl(&format!("http://{address}:8000/")).is_none() {
        assert!(Instant::now() < deadline, "never answered after the CLI was killed");
        std::thread::sleep(Duration::from_millis(100));
    }

    // SIGKILL the shim: the container's processes outlive it (its output pipe
    // is gone, so it is no longer watched), and rm still cleans everything.
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(site.host.path().join("containers/orphan-web/state.json")).unwrap()).unwrap();
    let (shim, init) = (state["shim_pid"].as_i64().unwrap(), state["pid"].as_i64().unwrap());
    Command::new("kill").args(["-KILL", &shim.to_string()]).status().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(std::path::Path::new(&format!("/proc/{init}")).exists(), "the container died with its shim");
    assert_eq!(site.info("orphan-web")["status"], "exited", "a container without a shim is not reported running");
    site.host.ok(["containers:rm", "orphan-web"]);
    assert_eq!(site.leftovers("orphan-web"), Vec::<String>::new());
    // Gone, or a zombie waiting for whoever inherited it (pid 1) to reap it.
    let stat = fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.rsplit(')').next().unwrap().trim_start().starts_with('Z'), "the container outlived rm: {stat}");
    assert!(curl(&format!("http://{address}:8000/")).is_none(), "the app outlived rm");
}

#[test]
#[ignore = "needs root: containers need root"]
fn twenty_containers_come_and_go_without_leftovers() {
    assert!(is_root(), "needs root: run ./test.sh as root");
    let site = Site::new("bt-loop", "10.213.4.0/24", "");
    let links_before = host_links();
    for i in 0..20 {
        let id = format!("loop-{i}");
        site.run(&["--id", &id, "--memory", "64m", "--pids", "64", "--", "sleep", "300"]);
        site.wait_for(&id, "ran", |c| c["status"] == "running");
        site.host.ok(["containers:rm", &id, "--force"]);
        assert_eq!(site.leftovers(&id), Vec::<String>::new(), "after {id}");
    }
    assert_eq!(host_links(), links_before, "veth links left behind");
    let addresses = fs::read_to_string(site.host.path().join("network/addresses.json")).unwrap();
    assert_eq!(addresses.trim(), "{}");
}
