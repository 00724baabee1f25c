//! The OCI runtime spec (`config.json`) of a container: namespaces, mounts,
//! limits and the hardening berth applies to every process.

use oci_spec::runtime::Spec;

use super::network::{self, NetworkMode};
use super::store::{ContainerConfig, ContainerDir};

/// Capabilities a process keeps (Docker's default set minus the raw and
/// audit ones). Never CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE or
/// CAP_SYS_MODULE. An unprivileged user (the default) holds none of these
/// in its effective set anyway; the bounding set caps what setuid binaries get.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
];

/// Syscalls the default seccomp profile refuses with EPERM: mounting,
/// kernel modules, rebooting, kexec, swap, clock changes, BPF, keyrings,
/// namespace games and raw I/O ports. Everything else an app needs is allowed.
const DENIED_SYSCALLS: &[&str] = &[
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "bpf",
    "add_key",
    "request_key",
    "keyctl",
    "unshare",
    "setns",
    "iopl",
    "ioperm",
    "acct",
    "quotactl",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "perf_event_open",
    "userfaultfd",
    "syslog",
    "vhangup",
];

/// The pids limit of a container that sets none.
pub const DEFAULT_PIDS: i64 = 4096;

/// clone(2) flags that make new namespaces, refused as Docker's default
/// profile refuses them: a container must not build itself a user
/// namespace in which it holds every capability.
const NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// Refused outright besides DENIED_SYSCALLS: tracing other processes and
/// io_uring (a wide kernel surface that bypasses the filter for what it submits).
const DENIED_MORE: &[&str] = &["ptrace", "process_vm_readv", "process_vm_writev", "io_uring_setup", "io_uring_enter", "io_uring_register"];

/// The seccomp rules: the denied lists with EPERM, namespace flags of
/// clone(2) with EPERM, and clone3 with ENOSYS, whose flags sit in memory
/// seccomp cannot read; libc then falls back to clone(2), which is checked.
fn seccomp_rules() -> Vec<serde_json::Value> {
    let mut rules = vec![
        serde_json::json!({"names": DENIED_SYSCALLS, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}),
        serde_json::json!({"names": DENIED_MORE, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}),
        serde_json::json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}),
    ];
    for flag in NAMESPACE_FLAGS {
        rules.push(serde_json::json!({
            "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
    }
    rules
}

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The cgroup every container lives under (one parent for all of berth).
pub fn cgroup_path(paths: &ContainerDir) -> String {
    format!("/berth/{}-{}", paths.scope, paths.id)
}

/// The container's namespaces: its own of each kind, and the network
/// namespace berth made for it unless it shares the host's.
fn namespaces(config: &ContainerConfig, paths: &ContainerDir) -> Vec<serde_json::Value> {
    let mut namespaces: Vec<serde_json::Value> =
        ["pid", "mount", "uts", "ipc", "cgroup"].iter().map(|kind| serde_json::json!({"type": kind})).collect();
    if config.network != NetworkMode::Host {
        namespaces.push(serde_json::json!({"type": "network", "path": network::netns_path(&paths.scope, &config.id)}));
    }
    namespaces
}

/// cgroup limits: no devices, memory (swap equal to memory, so the limit
/// is real), CPU quota and shares, and pids (a default when none is set).
fn resources(config: &ContainerConfig) -> serde_json::Value {
    let limits = &config.limits;
    let mut resources = serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(bytes) = limits.memory_bytes {
        resources["memory"] = serde_json::json!({"limit": bytes, "swap": bytes});
    }
    if let Some(reservation) = limits.memory_reservation_bytes {
        resources["memory"]["reservation"] = serde_json::json!(reservation);
    }
    if let Some(cpus) = limits.cpus {
        let period = 100_000u64;
        resources["cpu"] = serde_json::json!({"quota": (cpus * period as f64) as i64, "period": period});
    }
    if let Some(share) = limits.cpu_reservation {
        // 1024 shares is one CPU's weight, as Docker counts them.
        resources["cpu"]["shares"] = serde_json::json!(((share * 1024.0) as u64).max(2));
    }
    // A fork bomb stops at the default; a type's own limit replaces it.
    resources["pids"] = serde_json::json!({"limit": limits.pids.unwrap_or(DEFAULT_PIDS)});
    resources
}

/// The kernel file systems every container gets, its /etc files, and the
/// app's own bind mounts (never setuid, never devices).
fn mounts(config: &ContainerConfig, paths: &ContainerDir) -> Vec<serde_json::Value> {
    let etc = paths.etc_dir();
    let etc_file = |name: &str| serde_json::json!({"destination": format!("/etc/{name}"), "type": "bind", "source": etc.join(name), "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]});
    let mut mounts = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        serde_json::json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        serde_json::json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        serde_json::json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        serde_json::json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        serde_json::json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}),
        etc_file("hosts"),
        etc_file("hostname"),
        etc_file("resolv.conf"),
    ];
    mounts.extend(config.mounts.iter().map(|m| {
        let options = ["rbind", "nosuid", "nodev", if m.readonly { "ro" } else { "rw" }];
        serde_json::json!({"destination": m.destination, "type": "bind", "source": m.source, "options": options})
    }));
    mounts
}

pub fn build(config: &ContainerConfig, paths: &ContainerDir) -> Spec {
    let caps: Vec<&str> = CAPABILITIES.to_vec();
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "hostname": config.id.as_str(),
        "root": {"path": paths.rootfs(), "readonly": config.readonly_root},
        "process": {
            "terminal": config.terminal,
            "user": {"uid": config.uid, "gid": config.gid},
            "args": config.args,
            "env": config.env,
            "cwd": config.cwd,
            "noNewPrivileges": true,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        },
        "mounts": mounts(config, paths),
        "linux": {
            "namespaces": namespaces(config, paths),
            "cgroupsPath": cgroup_path(paths),
            "resources": resources(config),
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
                "syscalls": seccomp_rules(),
            },
        },
    });
    serde_json::from_value(spec).expect("the spec above matches the OCI runtime schema")
}
