//! `minirun-bench`: times minirun against runc and crun on the same busybox root filesystem.
//!
//! Measures (each as median and mean over `--iterations` runs):
//! - create+start+wait+delete of a busybox `true` container, one CLI process per run:
//!   `minirun run --pod P --wait --rm busybox true` (in an existing sandbox) vs
//!   `runc run -b BUNDLE ID` and `crun run -b BUNDLE ID` (foreground run = create, start, wait,
//!   delete); the bundle's rootfs is minirun's own unpacked busybox snapshot, read-only
//! - sandbox creation + removal (`minirun sandbox create` / `sandbox rm`)
//! - layer unpack throughput of a generated gzip layer: minirun's safe unpacker (with sha256 of
//!   the stream) vs `tar -xzf`
//!
//! Needs root, the image tarballs (`--images DIR`, from scripts/build-images.sh) and a release
//! `minirun` next to this binary. Prints a Markdown section for docs/perf.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Parser)]
#[command(about = "minirun vs runc vs crun")]
struct Args {
    /// Directory with pause_latest.tar and busybox_latest.tar.
    #[arg(long, default_value = "target/images")]
    images: PathBuf,
    /// Runs per measurement.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Size of the generated layer for the unpack benchmark, in MiB.
    #[arg(long, default_value_t = 64)]
    layer_mib: usize,
    /// Internal: time `crun run` of BUNDLE (state in STATE) this many times and print the
    /// milliseconds as JSON; used under `unshare -m` with cgroup2 mounted on /sys/fs/cgroup.
    #[arg(long, hide = true, num_args = 3, value_names = ["N", "BUNDLE", "STATE"])]
    crun_loop: Option<Vec<String>>,
    /// Internal: time `minirun run` this many times in a fresh sandbox of ROOT with cgroups
    /// under CGROUP and print the milliseconds as JSON; used in the same private cgroup2 view.
    #[arg(long, hide = true, num_args = 3, value_names = ["N", "ROOT", "CGROUP"])]
    minirun_loop: Option<Vec<String>>,
}

/// The hidden `--crun-loop N BUNDLE STATE` mode: one warm-up, then N timed `crun run`s.
fn crun_loop(spec: &[String]) -> Result<()> {
    let n: usize = spec[0].parse()?;
    let v = time_n(n, |i| {
        run_ok(
            Command::new("crun")
                .arg("--root")
                .arg(&spec[2])
                .args(["run", "-b", &spec[1]])
                .arg(format!("bench-{i}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        )?;
        Ok(())
    })?;
    let ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    println!("{}", serde_json::to_string(&ms)?);
    Ok(())
}

/// The hidden `--minirun-loop N ROOT CGROUP` mode: a sandbox, one warm-up, then N timed
/// `minirun run`s in it, and the sandbox removed.
fn minirun_loop(minirun: &Path, spec: &[String]) -> Result<()> {
    let n: usize = spec[0].parse()?;
    let m = minirun_command(minirun, Path::new(&spec[1]), &spec[2]);
    let pod = create_pod(m(&["sandbox", "create", "--config", "-"]))?;
    let v = time_n(n, |_| run_true(m(&[]), &pod));
    run_ok(&mut m(&["sandbox", "rm", &pod]))?;
    let ms: Vec<f64> = v?.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    println!("{}", serde_json::to_string(&ms)?);
    Ok(())
}

/// Runs this binary's hidden `mode` (`--crun-loop` or `--minirun-loop`) in a private mount
/// namespace whose /sys/fs/cgroup is the cgroup2 hierarchy: what a pure cgroup v2 host looks
/// like, with only the controllers v1 does not hold (on this hybrid host: no memory, cpu or
/// pids). crun runs only there, and minirun is timed there too for a like-for-like row.
fn in_private_cgroup2(me: &Path, mode: &str, args: [&str; 3]) -> Result<Vec<Duration>> {
    let script = r#"mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$1" "$2" "$3" "$4""#;
    let out = run_ok(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script])
            .arg(me)
            .arg(mode)
            .args(args),
    )?;
    let ms: Vec<f64> = serde_json::from_str(out.trim()).context("loop output")?;
    Ok(ms
        .into_iter()
        .map(|m| Duration::from_secs_f64(m / 1000.0))
        .collect())
}

/// crun on a hybrid cgroup host: in the private cgroup2 view, without the device rules (crun's
/// eBPF device filter needs RLIMIT_MEMLOCK raised, i.e. CAP_SYS_RESOURCE).
fn crun_private_cgroup2(me: &Path, bundle: &Path, state: &Path, n: usize) -> Result<Vec<Duration>> {
    let config = bundle.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config)?)?;
    if let Some(linux) = v["linux"].as_object_mut() {
        linux.remove("resources");
    }
    std::fs::write(&config, serde_json::to_vec_pretty(&v)?)?;
    let (bundle, state) = (
        bundle.to_str().context("path")?,
        state.to_str().context("path")?,
    );
    in_private_cgroup2(me, "--crun-loop", [&n.to_string(), bundle, state])
}

/// Removes every sandbox of the bench root and its cgroups, also when the bench fails.
struct Cleanup {
    minirun: PathBuf,
    root: PathBuf,
    cgroup_root: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let m = |a: &[&str]| {
            Command::new(&self.minirun)
                .arg("--root")
                .arg(&self.root)
                .arg("--cgroup-root")
                .arg(&self.cgroup_root)
                .args(a)
                .output()
        };
        if let Ok(o) = m(&["pods", "--json"]) {
            let pods: Vec<serde_json::Value> =
                serde_json::from_slice(&o.stdout).unwrap_or_default();
            for p in pods {
                if let Some(id) = p["id"].as_str() {
                    let _ = m(&["sandbox", "rm", id]);
                }
            }
        }
        for h in ["unified", "memory", "cpu", "cpuacct", "pids"] {
            let _ =
                std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(h).join(&self.cgroup_root));
        }
        // What the minirun row in the private cgroup2 view made, seen from here.
        let _ = std::fs::remove_dir(
            Path::new("/sys/fs/cgroup/unified").join(format!("{}-v2", self.cgroup_root)),
        );
    }
}

fn stats(v: &mut [Duration]) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(v[v.len() / 2]);
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    (median, mean)
}

fn run_ok(cmd: &mut Command) -> Result<String> {
    let o = cmd
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("{cmd:?}"))?;
    if !o.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8_lossy(&o.stdout).to_string())
}

fn time_n(n: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<Vec<Duration>> {
    let mut v = Vec::new();
    f(usize::MAX)?; // warm-up
    for i in 0..n {
        let t = Instant::now();
        f(i)?;
        v.push(t.elapsed());
    }
    Ok(v)
}

/// `minirun --root ROOT --cgroup-root CGROUP ARGS...` as a command to run.
fn minirun_command<'a>(
    minirun: &'a Path,
    root: &'a Path,
    cgroup_root: &'a str,
) -> impl Fn(&[&str]) -> Command + 'a {
    move |args| {
        let mut c = Command::new(minirun);
        c.arg("--root")
            .arg(root)
            .arg("--cgroup-root")
            .arg(cgroup_root)
            .args(args);
        c
    }
}

/// One timed lifecycle: `minirun run --pod POD --wait --rm busybox:latest true` (`minirun` is
/// the command with its global flags).
fn run_true(mut minirun: Command, pod: &str) -> Result<()> {
    run_ok(minirun.args([
        "run",
        "--pod",
        pod,
        "--wait",
        "--rm",
        "busybox:latest",
        "true",
    ]))?;
    Ok(())
}

/// Runs `minirun sandbox create --config -` with a fixed config; returns the sandbox id.
fn create_pod(mut cmd: Command) -> Result<String> {
    use std::io::Write;
    let mut c = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    c.stdin
        .take()
        .context("stdin")?
        .write_all(br#"{"name":"bench"}"#)?;
    let o = c.wait_with_output()?;
    if !o.status.success() {
        bail!("sandbox create failed");
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    Ok(v["id"].as_str().context("sandbox id")?.to_string())
}

fn make_bundle(dir: &Path, rootfs: &Path, runtime: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    run_ok(Command::new(runtime).arg("spec").current_dir(dir))?;
    let p = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p)?)?;
    v["process"]["terminal"] = false.into();
    v["process"]["args"] = serde_json::json!(["true"]);
    v["root"]["path"] = rootfs.display().to_string().into();
    v["root"]["readonly"] = true.into();
    std::fs::write(&p, serde_json::to_vec_pretty(&v)?)?;
    Ok(())
}

fn version(bin: &str) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_else(|| "not installed".into())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !nix::unistd::Uid::effective().is_root() {
        bail!("needs root");
    }
    if let Some(spec) = &args.crun_loop {
        return crun_loop(spec);
    }
    let me = std::env::current_exe()?;
    let minirun = me.parent().context("exe dir")?.join("minirun");
    if let Some(spec) = &args.minirun_loop {
        return minirun_loop(&minirun, spec);
    }
    let tmp = tempfile::Builder::new()
        .prefix("minirun-bench-")
        .tempdir()?;
    let root = tmp.path().join("root");
    let cg = format!("minicluster-bench-{}", std::process::id());
    let _cleanup = Cleanup {
        minirun: minirun.clone(),
        root: root.clone(),
        cgroup_root: cg.clone(),
    };
    let m = minirun_command(&minirun, &root, &cg);
    for img in ["pause_latest.tar", "busybox_latest.tar"] {
        run_ok(&mut m(&[
            "load",
            args.images.join(img).to_str().context("path")?,
        ]))?;
    }
    let n = args.iterations;
    let mut rows = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // Sandbox create + remove.
    let mut sb = time_n(n, |_| {
        let id = create_pod(m(&["sandbox", "create", "--config", "-"]))?;
        run_ok(&mut m(&["sandbox", "rm", &id]))?;
        Ok(())
    })?;
    let (sb_med, sb_mean) = stats(&mut sb);

    // The pod for the container runs.
    let pod = create_pod(m(&["sandbox", "create", "--config", "-"]))?;

    let mut mr = time_n(n, |_| run_true(m(&[]), &pod))?;
    rows.push(("minirun", stats(&mut mr)));

    // The same rootfs for runc and crun: minirun's busybox snapshot.
    let snaps = root.join("images/snapshots");
    let rootfs = std::fs::read_dir(&snaps)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("bin/busybox").exists())
        .context("busybox snapshot")?;
    for rt in ["runc", "crun"] {
        if Command::new(rt).arg("--version").output().is_err() {
            eprintln!("{rt} not installed: skipped");
            continue;
        }
        let bundle = tmp.path().join(format!("bundle-{rt}"));
        make_bundle(&bundle, &rootfs, rt)?;
        let state_root = tmp.path().join(format!("state-{rt}"));
        let v = time_n(n, |i| {
            run_ok(
                Command::new(rt)
                    .arg("--root")
                    .arg(&state_root)
                    .args(["run", "-b"])
                    .arg(&bundle)
                    .arg(format!("bench-{i}"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()),
            )?;
            Ok(())
        });
        match v {
            Ok(mut v) => rows.push((rt, stats(&mut v))),
            Err(e) if rt == "crun" && format!("{e:#}").contains("hybrid") => {
                match crun_private_cgroup2(&me, &bundle, &state_root, n) {
                    Ok(mut v) => {
                        rows.push((
                            "crun (private cgroup2 view, no device rules)",
                            stats(&mut v),
                        ));
                        // minirun in the same view, for a like-for-like comparison.
                        let view_cg = format!("{cg}-v2");
                        let root_text = root.to_str().context("path")?;
                        match in_private_cgroup2(
                            &me,
                            "--minirun-loop",
                            [&n.to_string(), root_text, &view_cg],
                        ) {
                            Ok(mut v) => rows
                                .push(("minirun (the same private cgroup2 view)", stats(&mut v))),
                            Err(e) => notes.push(format!(
                                "minirun could not run in the private cgroup2 view: {}",
                                format!("{e:#}").trim()
                            )),
                        }
                        notes.push(
                            "crun refuses this hybrid cgroup host (\"cgroups in hybrid mode not supported\"). \
                             Its row ran in a private mount namespace with the cgroup2 hierarchy on /sys/fs/cgroup, \
                             where only controllers unused by v1 exist, and without the bundle's device rules: \
                             less work than minirun and runc do (no memory/cpu/pids cgroups, no device filter), \
                             so it is a lower bound for crun here. The row \"minirun (the same private cgroup2 view)\" \
                             ran minirun there too (a sandbox of the same root, cgroups with no memory/cpu/pids controllers, \
                             each init forked straight into its cgroup with clone3 CLONE_INTO_CGROUP as crun does): \
                             that pair is like for like, apart from the device filter crun skips and minirun's overlay root, \
                             pod namespaces, monitor and CRI log"
                                .into(),
                        );
                    }
                    Err(e2) => notes.push(format!(
                        "crun could not run here: {}; nor in a private cgroup2 view: {}",
                        format!("{e:#}").trim(),
                        format!("{e2:#}").trim()
                    )),
                }
            }
            Err(e) => notes.push(format!(
                "{rt} could not run here: {}",
                format!("{e:#}").trim()
            )),
        }
    }
    run_ok(&mut m(&["sandbox", "rm", &pod]))?;

    // Layer unpack: a generated layer of many files.
    let layer = tmp.path().join("layer.tar.gz");
    {
        let f = std::fs::File::create(&layer)?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        let mut seed = 0x9e3779b97f4a7c15u64;
        let total = args.layer_mib << 20;
        let mut written = 0;
        let mut i = 0;
        while written < total {
            let size = 4096 + (i * 7919) % (256 << 10);
            let data: Vec<u8> = (0..size)
                .map(|k| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if k % 4 == 0 {
                        (seed & 0xff) as u8
                    } else {
                        b'a' + (k % 26) as u8
                    }
                })
                .collect();
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, format!("d{}/f{i}", i % 64), &data[..])?;
            written += size;
            i += 1;
        }
        b.into_inner()?.finish()?;
    }
    let mut ours = time_n(5.min(n), |_| {
        let d = tmp.path().join("unpack-ours");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d)?;
        let f = std::io::BufReader::new(std::fs::File::open(&layer)?);
        let mut hr = runtime::image::store::HashingReader::new(flate2::read::GzDecoder::new(f));
        runtime::image::unpack::unpack_layer(&runtime::sys::LinuxSyscall, &mut hr, &d)?;
        hr.finish()?;
        Ok(())
    })?;
    let mut gnu = time_n(5.min(n), |_| {
        let d = tmp.path().join("unpack-tar");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d)?;
        run_ok(
            Command::new("tar")
                .arg("-xzf")
                .arg(&layer)
                .arg("-C")
                .arg(&d),
        )?;
        Ok(())
    })?;
    let mib = args.layer_mib as f64;
    let (ours_med, _) = stats(&mut ours);
    let (gnu_med, _) = stats(&mut gnu);

    // Report.
    let base = rows[0].1 .0;
    println!("### Container lifecycle: create+start+wait+delete of busybox `true`\n");
    println!("{n} runs each after one warm-up, one CLI process per run; same read-only rootfs.\n");
    println!("| runtime | median ms | mean ms | median vs minirun |");
    println!("|---|---|---|---|");
    for (name, (med, mean)) in &rows {
        println!("| {name} | {med:.1} | {mean:.1} | {:.2}x |", med / base);
    }
    println!(
        "\nVersions: runc `{}`, crun `{}`.",
        version("runc"),
        version("crun")
    );
    for note in &notes {
        println!("\nNote: {note}.");
    }
    println!();
    println!("### Sandbox creation\n");
    println!("`minirun sandbox create` + `sandbox rm` (pause process in new net/IPC/UTS/PID namespaces, pod cgroup): median {sb_med:.1} ms, mean {sb_mean:.1} ms.\n");
    println!("### Layer unpack\n");
    println!("A generated {mib:.0} MiB gzip layer (many files):\n");
    println!("| unpacker | median ms | MiB/s |");
    println!("|---|---|---|");
    println!(
        "| minirun (safe unpack + sha256) | {ours_med:.0} | {:.0} |",
        mib / (ours_med / 1000.0)
    );
    println!(
        "| `tar -xzf` | {gnu_med:.0} | {:.0} |",
        mib / (gnu_med / 1000.0)
    );
    Ok(())
}
