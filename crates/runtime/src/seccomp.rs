//! Seccomp: the runtime's default profile (Kubernetes' `RuntimeDefault`) as an OCI
//! `linux.seccomp` section, and the translation of such a section into BPF programs
//! (seccompiler) that the container init loads before it executes the container's process.
//!
//! The default profile denies with EPERM what containerd's default profile does not allow:
//! the syscalls it never allows (kexec, keyctl, userfaultfd, module loading, swap, ...) and the
//! ones it allows only with a capability the container lacks (mount, unshare, setns, bpf,
//! ptrace helpers, clock setting, ...), plus `clone` with namespace flags and `clone3` (ENOSYS,
//! so libc falls back to `clone`, whose flags can be checked) without CAP_SYS_ADMIN. It is a
//! deny list, where containerd's is an allow list, so a syscall newer than this list is not
//! refused. Non-native ABIs (i386, x32) are refused outright.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// Errors building a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: default action {0} is not supported (only SCMP_ACT_ALLOW)")]
    DefaultAction(String),
    #[error("seccomp: action {0} of syscalls {1:?} is not supported")]
    Action(String, Vec<String>),
    #[error("seccomp: argument rule of {name}: {message}")]
    Argument { name: String, message: String },
    #[error("seccomp: building the filter: {0}")]
    Build(String),
    #[error("seccomp: architecture not supported by the runtime's syscall table")]
    Architecture,
}

/// Syscalls never allowed by the default profile, whatever the capabilities.
const ALWAYS_DENIED: &[&str] = &[
    "add_key",
    "create_module",
    "get_kernel_syms",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "nfsservctl",
    "query_module",
    "request_key",
    "_sysctl",
    "sysfs",
    "uselib",
    "userfaultfd",
    "ustat",
];

/// Syscalls the default profile allows only with a capability: (capability, syscalls).
const CAPABILITY_GATED: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "swapoff",
            "swapon",
            "syslog",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "finit_module", "init_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
        ],
    ),
    ("CAP_SYS_RAWIO", &["ioperm", "iopl"]),
    (
        "CAP_SYS_TIME",
        &["clock_adjtime", "clock_settime", "settimeofday"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &["get_mempolicy", "mbind", "move_pages", "set_mempolicy"],
    ),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
];

/// The clone flags that create namespaces (allowed only with CAP_SYS_ADMIN).
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The default profile for a container holding `caps` (names like `CAP_SYS_ADMIN`).
pub fn default_profile(caps: &[String]) -> LinuxSeccomp {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut denied: Vec<&str> = ALWAYS_DENIED.to_vec();
    for (cap, names) in CAPABILITY_GATED {
        if !has(cap) {
            denied.extend_from_slice(names);
        }
    }
    denied.sort_unstable();
    denied.dedup();
    let mut syscalls = vec![serde_json::json!({
        "names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
    })];
    if !has("CAP_SYS_ADMIN") {
        // one rule per flag: the rules of a syscall are alternatives, its arguments conjunctions
        for flag in NAMESPACE_FLAGS {
            syscalls.push(serde_json::json!({
                "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }));
        }
        syscalls.push(serde_json::json!({
            "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS,
        }));
    }
    serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": syscalls,
    }))
    .expect("the default seccomp profile is a valid LinuxSeccomp")
}

/// The syscall number of `name` on this architecture, if it has one.
#[cfg(target_arch = "x86_64")]
pub fn syscall_number(name: &str) -> Option<i64> {
    let nr = match name {
        "acct" => libc::SYS_acct,
        "add_key" => libc::SYS_add_key,
        "bpf" => libc::SYS_bpf,
        "clock_adjtime" => libc::SYS_clock_adjtime,
        "clock_settime" => libc::SYS_clock_settime,
        "clone" => libc::SYS_clone,
        "clone3" => libc::SYS_clone3,
        "create_module" => 174, // removed from the kernel; the number stays reserved
        "delete_module" => libc::SYS_delete_module,
        "fanotify_init" => libc::SYS_fanotify_init,
        "finit_module" => libc::SYS_finit_module,
        "fsconfig" => libc::SYS_fsconfig,
        "fsmount" => libc::SYS_fsmount,
        "fsopen" => libc::SYS_fsopen,
        "fspick" => libc::SYS_fspick,
        "get_kernel_syms" => 177,
        "get_mempolicy" => libc::SYS_get_mempolicy,
        "init_module" => libc::SYS_init_module,
        "ioperm" => libc::SYS_ioperm,
        "iopl" => libc::SYS_iopl,
        "kcmp" => libc::SYS_kcmp,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "kexec_load" => libc::SYS_kexec_load,
        "keyctl" => libc::SYS_keyctl,
        "lookup_dcookie" => libc::SYS_lookup_dcookie,
        "mbind" => libc::SYS_mbind,
        "mount" => libc::SYS_mount,
        "mount_setattr" => libc::SYS_mount_setattr,
        "move_mount" => libc::SYS_move_mount,
        "move_pages" => libc::SYS_move_pages,
        "name_to_handle_at" => libc::SYS_name_to_handle_at,
        "nfsservctl" => libc::SYS_nfsservctl,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "open_tree" => libc::SYS_open_tree,
        "perf_event_open" => libc::SYS_perf_event_open,
        "pidfd_getfd" => libc::SYS_pidfd_getfd,
        "pivot_root" => libc::SYS_pivot_root,
        "process_madvise" => libc::SYS_process_madvise,
        "process_vm_readv" => libc::SYS_process_vm_readv,
        "process_vm_writev" => libc::SYS_process_vm_writev,
        "query_module" => 178,
        "quotactl" => libc::SYS_quotactl,
        "quotactl_fd" => 443,
        "reboot" => libc::SYS_reboot,
        "request_key" => libc::SYS_request_key,
        "set_mempolicy" => libc::SYS_set_mempolicy,
        "setdomainname" => libc::SYS_setdomainname,
        "sethostname" => libc::SYS_sethostname,
        "setns" => libc::SYS_setns,
        "settimeofday" => libc::SYS_settimeofday,
        "swapoff" => libc::SYS_swapoff,
        "swapon" => libc::SYS_swapon,
        "_sysctl" => libc::SYS__sysctl,
        "sysfs" => libc::SYS_sysfs,
        "syslog" => libc::SYS_syslog,
        "umount2" => libc::SYS_umount2,
        "unshare" => libc::SYS_unshare,
        "uselib" => libc::SYS_uselib,
        "userfaultfd" => libc::SYS_userfaultfd,
        "ustat" => libc::SYS_ustat,
        "vhangup" => libc::SYS_vhangup,
        _ => return None,
    };
    Some(nr)
}

/// The syscall number of `name` on this architecture, if it has one.
#[cfg(not(target_arch = "x86_64"))]
pub fn syscall_number(_name: &str) -> Option<i64> {
    None
}

/// x86_64's x32 ABI reaches the same syscalls with this bit set: a deny list must cover both.
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

fn action_name(a: LinuxSeccompAction) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{a:?}"))
}

/// seccompiler's operator and compared value for an OCI argument rule. libseccomp's masked
/// equality is `(arg & value) == valueTwo`: the mask goes into the operator.
fn condition(arg: &LinuxSeccompArg) -> (SeccompCmpOp, u64) {
    let v = arg.value();
    match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, v),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, v),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, v),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, v),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, v),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, v),
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            (SeccompCmpOp::MaskedEq(v), arg.value_two().unwrap_or(0))
        }
    }
}

/// The BPF programs of an OCI seccomp section, one per (action, errno) pair, to be loaded in
/// order. Only `SCMP_ACT_ALLOW` as the default action is supported (deny lists); syscall
/// names this architecture does not have are skipped, as libseccomp does.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<BpfProgram>, SeccompError> {
    if profile.default_action() != LinuxSeccompAction::ScmpActAllow {
        return Err(SeccompError::DefaultAction(action_name(
            profile.default_action(),
        )));
    }
    if syscall_number("clone").is_none() {
        return Err(SeccompError::Architecture);
    }
    let mut groups: BTreeMap<(String, u32), BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
    for sc in profile.syscalls().as_deref().unwrap_or_default() {
        let errno = sc.errno_ret().unwrap_or(libc::EPERM as u32);
        let key = (action_name(sc.action()), errno);
        match sc.action() {
            LinuxSeccompAction::ScmpActErrno
            | LinuxSeccompAction::ScmpActKill
            | LinuxSeccompAction::ScmpActKillProcess
            | LinuxSeccompAction::ScmpActKillThread => {}
            LinuxSeccompAction::ScmpActAllow => continue,
            other => return Err(SeccompError::Action(action_name(other), sc.names().clone())),
        }
        let mut conditions = Vec::new();
        for arg in sc.args().as_deref().unwrap_or_default() {
            let (op, compared) = condition(arg);
            let index = u8::try_from(arg.index()).unwrap_or(u8::MAX);
            let c = SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, compared).map_err(
                |e| SeccompError::Argument {
                    name: sc.names().join(","),
                    message: e.to_string(),
                },
            )?;
            conditions.push(c);
        }
        for name in sc.names() {
            let Some(nr) = syscall_number(name) else {
                continue;
            };
            let rules = groups.entry(key.clone()).or_default();
            for n in [nr, nr | X32_SYSCALL_BIT] {
                let list = rules.entry(n).or_default();
                if !conditions.is_empty() {
                    let rule = SeccompRule::new(conditions.clone()).map_err(|e| {
                        SeccompError::Argument {
                            name: name.clone(),
                            message: e.to_string(),
                        }
                    })?;
                    list.push(rule);
                }
            }
        }
    }
    let mut programs = Vec::new();
    for ((action, errno), rules) in groups {
        let on_match = match action.as_str() {
            "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno),
            "SCMP_ACT_KILL_THREAD" | "SCMP_ACT_KILL" => SeccompAction::KillThread,
            _ => SeccompAction::KillProcess,
        };
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            on_match,
            seccompiler::TargetArch::x86_64,
        )
        .map_err(|e| SeccompError::Build(e.to_string()))?;
        programs
            .push(BpfProgram::try_from(filter).map_err(|e| SeccompError::Build(e.to_string()))?);
    }
    Ok(programs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|s| s.args().is_none() && s.errno_ret() == Some(libc::EPERM as u32))
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn capabilities_lift_their_syscalls_from_the_deny_list() {
        let plain = default_profile(&["CAP_CHOWN".into(), "CAP_NET_RAW".into()]);
        let denied = names(&plain);
        for n in [
            "keyctl",
            "kexec_load",
            "mount",
            "unshare",
            "setns",
            "bpf",
            "reboot",
        ] {
            assert!(denied.iter().any(|d| d == n), "{n} denied: {denied:?}");
        }
        let admin = default_profile(&["CAP_SYS_ADMIN".into(), "CAP_SYS_TIME".into()]);
        let denied = names(&admin);
        for n in ["mount", "unshare", "setns", "clock_settime"] {
            assert!(!denied.iter().any(|d| d == n), "{n} allowed with its cap");
        }
        assert!(
            denied.iter().any(|d| d == "keyctl"),
            "keyctl is never allowed"
        );
        // clone with namespace flags and clone3 only matter without CAP_SYS_ADMIN
        let rules = |p: &LinuxSeccomp, n: &str| {
            p.syscalls()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter(|s| s.names().iter().any(|x| x == n))
                .count()
        };
        assert_eq!(rules(&plain, "clone"), NAMESPACE_FLAGS.len());
        assert_eq!(rules(&plain, "clone3"), 1);
        assert_eq!(rules(&admin, "clone"), 0);
        assert_eq!(rules(&admin, "clone3"), 0);
    }

    #[test]
    fn profiles_compile_to_one_program_per_action() {
        let programs = compile(&default_profile(&[])).unwrap();
        // EPERM and ENOSYS
        assert_eq!(programs.len(), 2);
        assert!(programs.iter().all(|p| !p.is_empty()));
        let deny_all: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "syscalls": []
        }))
        .unwrap();
        assert!(matches!(
            compile(&deny_all),
            Err(SeccompError::DefaultAction(a)) if a == "SCMP_ACT_ERRNO"
        ));
        let notify: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .unwrap();
        assert!(matches!(compile(&notify), Err(SeccompError::Action(..))));
    }
}
