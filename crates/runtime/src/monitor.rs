//! The pod monitor (the shim role): one process per sandbox that owns all the pod's containers.
//!
//! `create_sandbox` double-forks it (setsid, so it outlives its creator). It listens on
//! `<pod dir>/monitor.sock` and takes one request per connection, a line each:
//!
//! - `create <id>`: forks the init of `containers/<id>/` (its `meta.json` and `config.json`)
//!   into the PID namespace the meta names, puts it into its cgroups, and answers `ok <pid>`
//!   once the init is ready to be started, or `error <message>`;
//! - `wait <id>`: answers `done` once the container's exit record is written (at once when it
//!   runs no such container);
//! - `close-stdin <id>`: lets go of the end of a stdinOnce container's FIFO it keeps; `ok`;
//! - `resize <id> <cols> <rows>`: sets a terminal container's window size; `ok`;
//! - `exit`: exits as soon as it runs no container; `ok`.
//!
//! Meanwhile it relays every container's stdout and stderr into its CRI log (for a terminal
//! container: what its pty master reads, as stdout, with the stdin FIFO copied into the pty;
//! the init opens the pty inside the container and sends the master over a socketpair), reaps the inits
//! (SIGCHLD through a signalfd) and writes each exit record (`exit.json`: code, reason, finish
//! time). It exits by itself once the pause container has exited and nothing else runs.
//! Everything is non-blocking in one poll loop, so an init that is slow to set up holds up
//! nobody else.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::cgroup::Cgroup;
use crate::init::{self, InitError};
use crate::logs::{LogWriter, Stream};
use crate::mounts::Overlay;
use crate::process::{self, Forked};
use crate::runtime::{
    nix_err, read_json, write_json, ContainerMeta, ExitRecord, MonitorState, Runtime, RuntimeError,
    STDIN_FIFO,
};
use crate::spec::Ns;
use crate::sys::Syscall;
use crate::util::{now_nanos, rfc3339_nanos};

/// The monitor's socket in the pod dir.
pub const SOCKET: &str = "monitor.sock";
/// The monitor's pid, written by itself into the pod dir.
pub const PID_FILE: &str = "monitor.pid";

/// How long a container's output is still relayed after its init exited, for processes of the
/// container that outlive it (a shared or host PID namespace) and still hold the pipes.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// A monitor that was never asked to run the pause container gives up after this long.
const IDLE_WITHOUT_PAUSE: Duration = Duration::from_secs(60);

type Result<T> = std::result::Result<T, RuntimeError>;

// ------------------------------------------------------------------------------- client side

/// The socket's address. A pod dir deep enough to overflow `sun_path` (108 bytes) is reached
/// through `/proc/self/fd/<dir>`; the returned descriptor must live while the path is used.
fn socket_path(pod_dir: &Path) -> std::io::Result<(Option<OwnedFd>, PathBuf)> {
    let direct = pod_dir.join(SOCKET);
    if direct.as_os_str().len() < 100 {
        return Ok((None, direct));
    }
    let dir = nix::fcntl::open(
        pod_dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let path = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd()));
    Ok((Some(dir), path))
}

fn connect(pod_dir: &Path) -> std::io::Result<UnixStream> {
    let (_dir, path) = socket_path(pod_dir)?;
    UnixStream::connect(path)
}

/// Sends one request and reads the one-line answer (`timeout` bounds the wait, `None` waits
/// as long as the monitor lives).
fn request(pod_dir: &Path, line: &str, timeout: Option<Duration>) -> std::io::Result<String> {
    let mut s = connect(pod_dir)?;
    s.write_all(format!("{line}\n").as_bytes())?;
    s.set_read_timeout(timeout)?;
    read_answer(&mut s)
}

fn read_answer(s: &mut UnixStream) -> std::io::Result<String> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.ends_with(b"\n") {
            break;
        }
    }
    if answer.is_empty() {
        return Err(std::io::Error::new(
            ErrorKind::UnexpectedEof,
            "the monitor closed the connection without an answer",
        ));
    }
    Ok(String::from_utf8_lossy(&answer).trim_end().to_string())
}

fn monitor_io(pod_dir: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io {
        path: pod_dir.join(SOCKET),
        source,
    }
}

/// Asks the pod's monitor to create container `id` (already described in its dir); returns the
/// init's host pid once it is ready to start.
pub(crate) fn create(pod_dir: &Path, id: &str) -> Result<i32> {
    let answer = request(pod_dir, &format!("create {id}"), None).map_err(monitor_io(pod_dir))?;
    answer
        .strip_prefix("ok ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| refused(id, &answer))
}

/// The monitor's `error <message>` answer (or any unexpected one) about container `id`.
fn refused(id: &str, answer: &str) -> RuntimeError {
    RuntimeError::Init {
        id: id.to_string(),
        msg: answer.strip_prefix("error ").unwrap_or(answer).to_string(),
    }
}

/// Asks the monitor to let go of the stdinOnce FIFO end of `id`. A pod without a monitor has
/// nothing left to let go of.
pub(crate) fn close_stdin(pod_dir: &Path, id: &str) -> Result<()> {
    match request(
        pod_dir,
        &format!("close-stdin {id}"),
        Some(Duration::from_secs(5)),
    ) {
        Ok(_) => Ok(()),
        Err(e) if gone(&e) => Ok(()),
        Err(e) => Err(monitor_io(pod_dir)(e)),
    }
}

/// Asks the monitor to set the window size of `id`'s terminal.
pub(crate) fn resize(pod_dir: &Path, id: &str, cols: u16, rows: u16) -> Result<()> {
    let answer = request(
        pod_dir,
        &format!("resize {id} {cols} {rows}"),
        Some(Duration::from_secs(5)),
    )
    .map_err(monitor_io(pod_dir))?;
    if answer == "ok" {
        return Ok(());
    }
    Err(refused(id, &answer))
}

/// Asks the monitor to exit once it runs no container (a pod without a monitor is done).
pub(crate) fn ask_exit(pod_dir: &Path) {
    let _ = request(pod_dir, "exit", Some(Duration::from_secs(5)));
}

fn gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound | ErrorKind::ConnectionRefused | ErrorKind::UnexpectedEof
    )
}

/// A pending `wait <id>` request: readable once the exit record is written or the monitor is
/// gone.
pub(crate) struct ExitWatch(Option<UnixStream>);

impl ExitWatch {
    /// Asks the pod's monitor to tell when `id` has exited.
    pub(crate) fn new(pod_dir: &Path, id: &str) -> Self {
        let s = connect(pod_dir).and_then(|mut s| {
            s.write_all(format!("wait {id}\n").as_bytes())?;
            Ok(s)
        });
        Self(s.ok())
    }

    /// Waits up to `timeout` for the answer; true once it came (or the monitor went away),
    /// after which state on disk is final or about to be.
    pub(crate) fn wait(&mut self, timeout: Duration) -> bool {
        let Some(s) = &mut self.0 else {
            std::thread::sleep(timeout.min(Duration::from_millis(20)));
            return true;
        };
        if s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .is_err()
        {
            self.0 = None;
            return true;
        }
        match read_answer(s) {
            Ok(_) => {
                self.0 = None;
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(_) => {
                self.0 = None;
                true
            }
        }
    }
}

// ------------------------------------------------------------------------------- the monitor

/// Double-forks the pod monitor for `pod_dir` and waits until it listens; returns its pid.
pub(crate) fn spawn(rt: &Runtime, pod_dir: &Path) -> Result<i32> {
    let (report_r, report_w) = process::pipe().map_err(nix_err("pipe"))?;
    match process::fork().map_err(nix_err("fork"))? {
        Forked::Child => {
            drop(report_r);
            let _ = nix::unistd::setsid();
            match process::fork() {
                Ok(Forked::Child) => process::exit_now(serve(rt, pod_dir, report_w)),
                _ => process::exit_now(0),
            }
        }
        Forked::Parent(child) => {
            drop(report_w);
            process::wait_exit(child);
            let mut buf = String::new();
            let _ = fs::File::from(report_r).read_to_string(&mut buf);
            match buf.strip_prefix("ok ").and_then(|p| p.parse().ok()) {
                Some(pid) => Ok(pid),
                None => Err(RuntimeError::Init {
                    id: pod_dir
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                    msg: if buf.is_empty() {
                        "pod monitor exited without a report".into()
                    } else {
                        format!("pod monitor: {buf}")
                    },
                }),
            }
        }
    }
}

/// The monitor's body (in the double-forked grandchild); returns its exit code.
fn serve(rt: &Runtime, pod_dir: &Path, report_w: OwnedFd) -> i32 {
    let mut report = fs::File::from(report_w);
    match Monitor::new(rt, pod_dir) {
        Ok(m) => {
            let _ = report.write_all(format!("ok {}", std::process::id()).as_bytes());
            drop(report);
            m.run()
        }
        Err(e) => {
            let _ = report.write_all(e.as_bytes());
            1
        }
    }
}

/// A connection whose request line is still coming.
struct Client {
    stream: UnixStream,
    input: Vec<u8>,
}

/// A container this monitor runs.
struct Container {
    id: String,
    dir: PathBuf,
    pid: Pid,
    pause: bool,
    cgroup: Cgroup,
    log: LogWriter,
    /// stdout and stderr read ends, until they reach end-of-file.
    output: [Option<fs::File>; 2],
    /// The FIFO end kept open for a stdinOnce container until `close-stdin`.
    stdin_keeper: Option<OwnedFd>,
    /// A terminal container's pty master (its output, and where its input goes).
    terminal: Option<fs::File>,
    /// A terminal container's stdin FIFO, which this monitor copies into the pty.
    terminal_input: Option<fs::File>,
    /// Until the init has sent its pty master: this monitor's end of the socket it comes over.
    console: Option<OwnedFd>,
    /// Until the init reports ready: its status pipe, what it wrote, and who asked.
    setup: Option<Setup>,
    /// Exit status and when it was reaped.
    exited: Option<((i32, Option<i32>), Instant)>,
}

struct Setup {
    status: fs::File,
    written: Vec<u8>,
    asker: UnixStream,
}

struct Monitor<'a> {
    rt: &'a Runtime,
    pod_dir: PathBuf,
    /// Keeps the `/proc/self/fd` address of the socket valid, when that is used.
    _dir: Option<OwnedFd>,
    socket: PathBuf,
    listener: UnixListener,
    signals: SignalFd,
    /// This process's own PID namespace, restored after each fork.
    own_pid_ns: fs::File,
    clients: Vec<Client>,
    waiters: Vec<(String, UnixStream)>,
    containers: Vec<Container>,
    had_pause: bool,
    pause_done: bool,
    exit_asked: bool,
    born: Instant,
    buf: Vec<u8>,
}

impl<'a> Monitor<'a> {
    fn new(rt: &'a Runtime, pod_dir: &Path) -> std::result::Result<Self, String> {
        if let Ok(null) = process::dev_null() {
            process::set_stdio(Some(&null), Some(&null), Some(&null));
        }
        let _ = std::env::set_current_dir("/");
        let own_pid_ns =
            fs::File::open("/proc/self/ns/pid").map_err(|e| format!("/proc/self/ns/pid: {e}"))?;
        let (dir, socket) =
            socket_path(pod_dir).map_err(|e| format!("{}: {e}", pod_dir.display()))?;
        let _ = fs::remove_file(&socket);
        let listener =
            UnixListener::bind(&socket).map_err(|e| format!("bind {}: {e}", socket.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("{}: {e}", socket.display()))?;
        // Child exits wake the loop through a signalfd.
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        let _ = mask.thread_block();
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("signalfd: {e}"))?;
        let pid_file = pod_dir.join(PID_FILE);
        fs::write(&pid_file, std::process::id().to_string())
            .map_err(|e| format!("{}: {e}", pid_file.display()))?;
        Ok(Self {
            rt,
            pod_dir: pod_dir.to_path_buf(),
            _dir: dir,
            socket,
            listener,
            signals,
            own_pid_ns,
            clients: Vec::new(),
            waiters: Vec::new(),
            containers: Vec::new(),
            had_pause: false,
            pause_done: false,
            exit_asked: false,
            born: Instant::now(),
            buf: vec![0u8; 64 * 1024],
        })
    }

    fn run(mut self) -> i32 {
        loop {
            self.poll();
            self.accept();
            self.reap();
            self.serve_clients();
            self.check_setups();
            self.relay_output();
            self.finish_exited();
            if self.done() {
                break;
            }
        }
        let _ = fs::remove_file(&self.socket);
        let _ = fs::remove_file(self.pod_dir.join(PID_FILE));
        0
    }

    fn done(&self) -> bool {
        self.containers.is_empty()
            && (self.exit_asked
                || self.pause_done
                || (!self.had_pause && self.born.elapsed() > IDLE_WITHOUT_PAUSE))
    }

    /// Sleeps until something is readable (bounded, for the drain deadlines and idle exit).
    fn poll(&self) {
        let mut fds = vec![
            PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
        ];
        for c in &self.clients {
            fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
        }
        for c in &self.containers {
            if let Some(s) = &c.setup {
                fds.push(PollFd::new(s.status.as_fd(), PollFlags::POLLIN));
            }
            for f in c.output.iter().flatten() {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
            for f in [&c.terminal, &c.terminal_input].into_iter().flatten() {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
        }
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(200u16));
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    input: Vec::new(),
                });
            }
        }
    }

    /// Reaps every exited child and notes the exits of container inits.
    fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) => {
                    let (Some(pid), Some(code)) = (ws.pid(), process::exit_code(ws)) else {
                        continue;
                    };
                    if let Some(c) = self.containers.iter_mut().find(|c| c.pid == pid) {
                        c.exited = Some((code, Instant::now()));
                    }
                }
            }
        }
    }

    /// Reads request lines and answers (or starts) them.
    fn serve_clients(&mut self) {
        let mut i = 0;
        while i < self.clients.len() {
            let c = &mut self.clients[i];
            let closed = drain(&mut c.stream, &mut self.buf, |b| {
                c.input.extend_from_slice(b)
            });
            if let Some(end) = c.input.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&c.input[..end]).to_string();
                let client = self.clients.swap_remove(i);
                self.handle(&line, client.stream);
            } else if closed || c.input.len() > 4096 {
                self.clients.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn handle(&mut self, line: &str, mut stream: UnixStream) {
        let (verb, id) = line.split_once(' ').unwrap_or((line, ""));
        match verb {
            "create" => {
                // On success the container's setup keeps a clone of the stream to answer later.
                if let Err(msg) = self.create(id, &stream) {
                    answer(&mut stream, &format!("error {msg}"));
                }
            }
            "wait" => {
                if self.containers.iter().any(|c| c.id == id) {
                    self.waiters.push((id.to_string(), stream));
                } else {
                    answer(&mut stream, "done");
                }
            }
            "close-stdin" => {
                if let Some(c) = self.containers.iter_mut().find(|c| c.id == id) {
                    c.stdin_keeper = None;
                }
                answer(&mut stream, "ok");
            }
            "resize" => {
                let mut words = id.split(' ');
                let (id, cols, rows) = (words.next(), words.next(), words.next());
                let size = cols
                    .and_then(|c| c.parse::<u16>().ok())
                    .zip(rows.and_then(|r| r.parse::<u16>().ok()));
                let terminal = self
                    .containers
                    .iter()
                    .find(|c| Some(c.id.as_str()) == id)
                    .and_then(|c| c.terminal.as_ref());
                let reply = match (terminal, size) {
                    (Some(t), Some((cols, rows))) => {
                        match crate::sys::set_terminal_size(t.as_fd(), cols, rows) {
                            Ok(()) => "ok".to_string(),
                            Err(e) => format!("error resize: {e}"),
                        }
                    }
                    (None, _) => format!("error no terminal for {}", id.unwrap_or("")),
                    (_, None) => "error resize wants <id> <cols> <rows>".to_string(),
                };
                answer(&mut stream, &reply);
            }
            "exit" => {
                self.exit_asked = true;
                answer(&mut stream, "ok");
            }
            _ => answer(&mut stream, &format!("error unknown request {verb:?}")),
        }
    }

    /// Forks the init of container `id` and puts it into its cgroups; it then sets itself up
    /// and reports on its status pipe (see [`Self::check_setups`]).
    fn create(&mut self, id: &str, asker: &UnixStream) -> std::result::Result<(), String> {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(format!("invalid container id {id:?}"));
        }
        if self.containers.iter().any(|c| c.id == id) {
            return Err(format!("container {id} is already running"));
        }
        let dir = self.pod_dir.join("containers").join(id);
        let meta: ContainerMeta = read_json(&dir.join("meta.json")).map_err(|e| e.to_string())?;
        let spec: Spec = read_json(&dir.join("config.json")).map_err(|e| e.to_string())?;
        let log = LogWriter::open(&meta.log_path, meta.log_max_size, 2)
            .map_err(|e| format!("log {}: {e}", meta.log_path.display()))?;
        let pipes = (|| -> nix::Result<_> {
            Ok((
                process::pipe()?,
                process::pipe()?,
                process::pipe()?,
                process::pipe()?,
            ))
        })();
        let ((out_r, out_w), (err_r, err_w), (sync_r, sync_w), (st_r, st_w)) =
            pipes.map_err(|e| format!("pipes: {e}"))?;
        let (stdin, stdin_keeper) = open_stdin(&dir, &meta)?;
        // A terminal container's init opens a pty in its own /dev/pts and sends the master
        // here; its stdin FIFO is then this monitor's to copy into the pty.
        let console = if meta.config.tty {
            let (ours, theirs) = nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| format!("console socket: {e}"))?;
            Some((ours, theirs))
        } else {
            None
        };
        let (stdin, terminal_input) = match (&console, stdin) {
            (Some(_), Some(fifo)) => (None, Some(fs::File::from(fifo))),
            (_, stdin) => (stdin, None),
        };
        let (console, console_theirs) = match console {
            Some((ours, theirs)) => (Some(ours), Some(theirs)),
            None => (None, None),
        };
        self.pid_ns_for_children(&meta.pid_ns)
            .map_err(|e| format!("pid namespace: {e}"))?;
        // Forked straight into its unified cgroup when there is one, so only the v1
        // hierarchies (on a hybrid host) need a migration.
        let cgroup = self.rt.cgroup(&meta.cgroup);
        let unified = cgroup.unified_dir().and_then(|d| {
            nix::fcntl::open(
                &d,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()
        });
        let (forked, into_cgroup) = match unified
            .as_ref()
            .and_then(|fd| process::fork_into_cgroup(fd.as_fd()).ok())
        {
            Some(f) => (Ok(f), true),
            None => (process::fork(), false),
        };
        if !matches!(forked, Ok(Forked::Child)) {
            // Later forks start from this process's own PID namespace again.
            let _ = self
                .rt
                .sys()
                .setns(self.own_pid_ns.as_fd(), CloneFlags::CLONE_NEWPID);
        }
        let child = match forked {
            Err(e) => return Err(format!("fork: {e}")),
            Ok(Forked::Child) => {
                drop((out_r, err_r, sync_w, st_r, console));
                let _ = SigSet::all().thread_unblock();
                let input = stdin.or_else(|| process::dev_null().ok());
                process::set_stdio(input.as_ref(), Some(&out_w), Some(&err_w));
                drop((out_w, err_w, input));
                let mut st = fs::File::from(st_w);
                // The monitor moves this process into the container's cgroups meanwhile (each
                // migration can wait for an RCU grace period, several ms): the namespaces and
                // the root are set up in parallel, and `sync` says the move is done.
                let sync = fs::File::from(sync_r);
                let fifo = dir.join("exec.fifo");
                let e = container_init(
                    self.rt.sys(),
                    &spec,
                    &meta.overlay,
                    &fifo,
                    console_theirs,
                    sync,
                    &mut st,
                );
                let _ = st.write_all(format!("E{e}").as_bytes());
                process::exit_now(127)
            }
            Ok(Forked::Parent(p)) => p,
        };
        drop((out_w, err_w, sync_r, st_w, stdin, unified, console_theirs));
        let placed = if into_cgroup {
            cgroup.add_pid_v1(child.as_raw())
        } else {
            cgroup.add_pid(child.as_raw())
        };
        if let Err(e) = placed {
            let _ = self.rt.sys().kill(child.as_raw(), Signal::SIGKILL);
            process::wait_exit(child);
            return Err(format!("cgroup: {e}"));
        }
        let _ = fs::File::from(sync_w).write_all(b"1");
        if let Some(input) = &terminal_input {
            set_nonblocking(input.as_fd());
        }
        for f in [&out_r, &err_r, &st_r] {
            set_nonblocking(f.as_fd());
        }
        let asker = asker.try_clone().map_err(|e| format!("socket: {e}"))?;
        self.had_pause |= meta.pause;
        self.containers.push(Container {
            id: id.to_string(),
            dir,
            pid: child,
            pause: meta.pause,
            cgroup,
            log,
            output: [Some(fs::File::from(out_r)), Some(fs::File::from(err_r))],
            stdin_keeper,
            terminal: None,
            terminal_input,
            console,
            setup: Some(Setup {
                status: fs::File::from(st_r),
                written: Vec::new(),
                asker,
            }),
            exited: None,
        });
        Ok(())
    }

    /// Points the PID namespace of the next child where the container wants it.
    fn pid_ns_for_children(&self, ns: &Ns) -> std::result::Result<(), String> {
        let sys = self.rt.sys();
        match ns {
            // unshare(CLONE_NEWPID) works only while the children's namespace is this
            // process's own, which the restore after every fork ensures.
            Ns::New => sys
                .unshare(CloneFlags::CLONE_NEWPID)
                .map_err(|e| e.to_string()),
            Ns::Join(p) => fs::File::open(p)
                .map_err(|e| format!("{}: {e}", p.display()))
                .and_then(|f| {
                    sys.setns(f.as_fd(), CloneFlags::CLONE_NEWPID)
                        .map_err(|e| e.to_string())
                }),
            Ns::Host => Ok(()),
        }
    }

    /// Answers the creators of inits that reported ready or failed.
    fn check_setups(&mut self) {
        let mut failed = Vec::new();
        for (i, c) in self.containers.iter_mut().enumerate() {
            let Some(s) = &mut c.setup else { continue };
            let eof = drain(&mut s.status, &mut self.buf, |b| {
                s.written.extend_from_slice(b)
            });
            if s.written.first() == Some(&b'R') {
                if let Some(console) = c.console.take() {
                    // The init sent the master before it reported ready.
                    match crate::sys::recv_fd(console.as_fd()) {
                        Ok(Some(master)) => {
                            set_nonblocking(master.as_fd());
                            c.terminal = Some(fs::File::from(master));
                        }
                        other => {
                            s.written =
                                format!("Eno terminal from the init: {other:?}").into_bytes();
                            failed.push(i);
                            continue;
                        }
                    }
                }
                let ms = MonitorState {
                    pid: c.pid.as_raw(),
                    pid_start: process::start_time(c.pid.as_raw()),
                    monitor_pid: std::process::id() as i32,
                };
                match write_json(&c.dir.join("state.json"), &ms) {
                    Ok(()) => {
                        answer(&mut s.asker, &format!("ok {}", c.pid));
                        c.setup = None;
                    }
                    Err(e) => {
                        s.written = format!("E{e}").into_bytes();
                        failed.push(i);
                    }
                }
            } else if eof {
                failed.push(i);
            }
        }
        for i in failed.into_iter().rev() {
            let mut c = self.containers.remove(i);
            let Some(mut s) = c.setup.take() else {
                continue;
            };
            let _ = self.rt.sys().kill(c.pid.as_raw(), Signal::SIGKILL);
            if c.exited.is_none() {
                process::wait_exit(c.pid);
            }
            let _ = c.cgroup.kill_all(self.rt.sys(), Duration::from_secs(2));
            let msg =
                String::from_utf8_lossy(s.written.strip_prefix(b"E").unwrap_or(&[])).to_string();
            let msg = if msg.is_empty() {
                "init exited during setup".to_string()
            } else {
                msg
            };
            answer(&mut s.asker, &format!("error {msg}"));
        }
    }

    /// Copies whatever the containers wrote into their logs, and terminal input into the ptys.
    fn relay_output(&mut self) {
        for c in &mut self.containers {
            if let Some(master) = &mut c.terminal {
                let log = &mut c.log;
                let ended = drain(master, &mut self.buf, |b| {
                    let _ = log.write(Stream::Stdout, b);
                });
                let _ = log.flush_partial(Stream::Stdout);
                if ended {
                    // EIO: every process of the container closed the terminal.
                    c.terminal = None;
                    c.terminal_input = None;
                }
            }
            if let (Some(input), Some(master)) = (&mut c.terminal_input, &c.terminal) {
                let mut master: &fs::File = master;
                let ended = drain(input, &mut self.buf, |b| {
                    let _ = master.write_all(b);
                });
                if ended {
                    // stdinOnce's end: the terminal's end-of-file character.
                    let _ = master.write_all(&[4]);
                    c.terminal_input = None;
                }
            }
            for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                let Some(pipe) = &mut c.output[i] else {
                    continue;
                };
                let log = &mut c.log;
                if drain(pipe, &mut self.buf, |b| {
                    let _ = log.write(stream, b);
                }) {
                    c.output[i] = None;
                }
            }
        }
    }

    /// Writes the exit records of inits that exited (once their output is drained) and
    /// answers who waits for them.
    fn finish_exited(&mut self) {
        let mut i = 0;
        while i < self.containers.len() {
            let c = &self.containers[i];
            let finished = c.setup.is_none()
                && c.exited.is_some_and(|(_, at)| {
                    (c.output.iter().all(Option::is_none) && c.terminal.is_none())
                        || at.elapsed() > DRAIN_AFTER_EXIT
                });
            if !finished {
                i += 1;
                continue;
            }
            let mut c = self.containers.remove(i);
            let _ = c.log.finish();
            let ((code, signal), _) = c.exited.unwrap_or(((255, None), Instant::now()));
            let reason = if c.cgroup.oom_kills() > 0 {
                "OOMKilled"
            } else if code == 0 {
                "Completed"
            } else {
                "Error"
            };
            let rec = ExitRecord {
                exit_code: code,
                signal,
                reason: reason.into(),
                finished_at: rfc3339_nanos(now_nanos()),
            };
            let _ = write_json(&c.dir.join("exit.json"), &rec);
            self.pause_done |= c.pause;
            let mut j = 0;
            while j < self.waiters.len() {
                if self.waiters[j].0 == c.id {
                    let (_, mut s) = self.waiters.swap_remove(j);
                    answer(&mut s, "done");
                } else {
                    j += 1;
                }
            }
        }
    }
}

/// Makes reads of `fd` return at once when nothing is there (this loop polls before reading).
fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
}

/// Reads what a non-blocking `source` has now into `sink`; true once it has ended (end-of-file
/// or an error).
fn drain(source: &mut impl Read, buf: &mut [u8], mut sink: impl FnMut(&[u8])) -> bool {
    loop {
        match source.read(buf) {
            Ok(0) => return true,
            Ok(n) => sink(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

fn answer(stream: &mut UnixStream, text: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.write_all(format!("{text}\n").as_bytes());
}

/// The init's stdin: `None` for /dev/null, or the FIFO in the container dir. An open stdin is a
/// FIFO the init holds open for reading and writing, so that it never sees end-of-file between
/// attaches. With stdinOnce the init reads it read-only and the monitor keeps the only other
/// open end (the second value) until `close-stdin`: then the init reads end-of-file once the
/// attach that is writing has closed its end too.
fn open_stdin(
    dir: &Path,
    meta: &ContainerMeta,
) -> std::result::Result<(Option<OwnedFd>, Option<OwnedFd>), String> {
    if !meta.config.stdin {
        return Ok((None, None));
    }
    let path = dir.join(STDIN_FIFO);
    let opened = nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600))
        .or_else(|e| {
            if e == nix::errno::Errno::EEXIST {
                Ok(())
            } else {
                Err(e)
            }
        })
        .and_then(|()| nix::fcntl::open(&path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()))
        .and_then(|rdwr| {
            if !meta.config.stdin_once {
                return Ok((Some(rdwr), None));
            }
            let read_only =
                nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
            Ok((Some(read_only), Some(rdwr)))
        });
    opened.map_err(|e| format!("stdin {}: {e}", path.display()))
}

/// The container init (in the monitor's child): namespaces, root, process, then wait for start
/// and exec. Returns only on failure.
fn container_init(
    sys: &dyn Syscall,
    spec: &Spec,
    overlay: &Overlay,
    fifo: &Path,
    console: Option<OwnedFd>,
    mut in_cgroups: fs::File,
    status: &mut fs::File,
) -> InitErrorText {
    let r = (|| -> std::result::Result<(PathBuf, OwnedFd), InitErrorText> {
        // A pod user namespace: opened now, used for idmapped mounts, joined last.
        let userns = match init::user_namespace(spec) {
            Some(p) => crate::userns::open(&p)
                .map_err(|e| InitErrorText(format!("user namespace {}: {e}", p.display())))?,
            None => None,
        };
        init::enter_namespaces(sys, spec)?;
        let fifo_fd = nix::fcntl::open(fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| InitErrorText(format!("open {}: {e}", fifo.display())))?;
        init::setup_rootfs(
            sys,
            spec,
            Some(overlay),
            userns.as_ref().map(|fd| fd.as_fd()),
        )?;
        if let Some(console) = &console {
            open_terminal(sys, console)?;
        }
        // Nothing of the container may run before the monitor has put this process in its
        // cgroups, and its cgroup namespace is rooted where it was put.
        let mut moved = [0u8; 1];
        if !matches!(in_cgroups.read(&mut moved), Ok(1)) {
            return Err(InitErrorText(
                "monitor did not place the init in its cgroups".into(),
            ));
        }
        init::enter_cgroup_namespace(sys, spec)?;
        if let Some(fd) = &userns {
            crate::userns::enter(sys, fd).map_err(|e| InitErrorText(e.to_string()))?;
        }
        init::setup_process(sys, spec)?;
        let p = spec.process().as_ref().ok_or(InitError::Spec("process"))?;
        let args = p.args().clone().unwrap_or_default();
        let env = p.env().clone().unwrap_or_default();
        let exe = init::find_executable(args.first().map(String::as_str).unwrap_or(""), &env)?;
        Ok((exe, fifo_fd))
    })();
    let (exe, fifo_fd) = match r {
        Ok(x) => x,
        Err(e) => return e,
    };
    drop(in_cgroups);
    if status.write_all(b"R").is_err() {
        return InitErrorText("monitor went away".into());
    }
    // Blocks until `start` opens the fifo for reading.
    let path = format!("/proc/self/fd/{}", fifo_fd.as_raw_fd());
    match fs::OpenOptions::new().write(true).open(&path) {
        Ok(mut f) => {
            let _ = f.write_all(b"0");
        }
        Err(e) => return InitErrorText(format!("exec fifo: {e}")),
    }
    drop(fifo_fd);
    let p = spec.process().clone().unwrap_or_default();
    let args = p.args().clone().unwrap_or_default();
    let env = p.env().clone().unwrap_or_default();
    let e = process::exec(&exe, &args, &env);
    eprintln!("minirun: exec {}: {e}", exe.display());
    process::exit_now(127)
}

/// In a terminal container's init, inside its root: a pty from the container's own /dev/pts
/// becomes the controlling terminal and stdio of a new session, and its master goes to the
/// monitor over `console`.
fn open_terminal(sys: &dyn Syscall, console: &OwnedFd) -> std::result::Result<(), InitErrorText> {
    let (master, slave) = crate::sys::open_pty(Path::new("/dev/pts/ptmx"), None)
        .map_err(|e| InitErrorText(format!("terminal: {e}")))?;
    nix::unistd::setsid().map_err(|e| InitErrorText(format!("setsid: {e}")))?;
    sys.set_controlling_tty(slave.as_fd())
        .map_err(|e| InitErrorText(format!("terminal: {e}")))?;
    process::set_stdio(Some(&slave), Some(&slave), Some(&slave));
    crate::sys::send_fd(console.as_fd(), master.as_fd())
        .map_err(|e| InitErrorText(format!("sending the terminal: {e}")))?;
    Ok(())
}

/// An init failure as text (crosses the status pipe).
struct InitErrorText(String);

impl std::fmt::Display for InitErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<InitError> for InitErrorText {
    fn from(e: InitError) -> Self {
        InitErrorText(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in monitor: accepts one connection, checks its request, answers `reply`
    /// (after `delay`), or closes without answering when `reply` is empty.
    fn fake_monitor(
        pod_dir: &Path,
        expect: &'static str,
        reply: &'static str,
        delay: Duration,
    ) -> std::thread::JoinHandle<()> {
        let (_dir, path) = socket_path(pod_dir).unwrap();
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while s.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
                line.push(b[0]);
            }
            assert_eq!(String::from_utf8(line).unwrap(), expect);
            std::thread::sleep(delay);
            if !reply.is_empty() {
                s.write_all(format!("{reply}\n").as_bytes()).unwrap();
            }
        })
    }

    #[test]
    fn create_returns_the_pid_or_the_monitors_error() {
        let dir = tempfile::tempdir().unwrap();
        let t = fake_monitor(dir.path(), "create c1", "ok 4242", Duration::ZERO);
        assert_eq!(create(dir.path(), "c1").unwrap(), 4242);
        t.join().unwrap();
        std::fs::remove_file(dir.path().join(SOCKET)).unwrap();
        let t = fake_monitor(
            dir.path(),
            "create c2",
            "error no such image",
            Duration::ZERO,
        );
        let e = create(dir.path(), "c2").unwrap_err().to_string();
        assert_eq!(e, "container c2: no such image");
        t.join().unwrap();
    }

    #[test]
    fn a_pod_without_a_monitor_is_reported_or_has_nothing_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let e = create(dir.path(), "c1").unwrap_err().to_string();
        assert!(e.contains("monitor.sock"), "{e}");
        close_stdin(dir.path(), "c1").unwrap();
        assert!(ExitWatch::new(dir.path(), "c1").wait(Duration::from_millis(10)));
    }

    #[test]
    fn exit_watch_wakes_on_the_answer_and_on_a_vanished_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let t = fake_monitor(dir.path(), "wait c1", "done", Duration::from_millis(300));
        let mut w = ExitWatch::new(dir.path(), "c1");
        assert!(!w.wait(Duration::from_millis(50)), "answered too early");
        assert!(w.wait(Duration::from_secs(5)));
        t.join().unwrap();
        std::fs::remove_file(dir.path().join(SOCKET)).unwrap();
        let t = fake_monitor(dir.path(), "wait c2", "", Duration::ZERO);
        let mut w = ExitWatch::new(dir.path(), "c2");
        t.join().unwrap();
        assert!(
            w.wait(Duration::from_secs(5)),
            "a closed connection ends the wait"
        );
    }

    #[test]
    fn deep_pod_dirs_are_reached_through_proc_self_fd() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let (fd, path) = socket_path(&deep).unwrap();
        assert!(
            fd.is_some() && path.starts_with("/proc/self/fd"),
            "{path:?}"
        );
        let t = fake_monitor(&deep, "exit", "ok", Duration::ZERO);
        assert_eq!(request(&deep, "exit", None).unwrap(), "ok");
        t.join().unwrap();
        assert!(deep.join(SOCKET).exists());
        let (fd, path) = socket_path(dir.path()).unwrap();
        assert!(fd.is_none() && path == dir.path().join(SOCKET));
    }
}
