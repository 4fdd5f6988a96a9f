//! `demo-web`: the small static HTTP server inside the `demo-web:v1` and `demo-web:v2` images.
//!
//! - `GET /` answers one line: `hostname=<pod name> ip=<address the client reached> version=<v>`.
//! - `GET /healthz` and `GET /ready` answer 200 `ok` or 503 `fail`; their result is flipped at
//!   runtime with `POST` (or `GET`) to `/healthz/fail`, `/healthz/ok`, `/ready/fail`, `/ready/ok`.
//! - Port: `--port N`, else env `PORT`, else 8080. Version: env `VERSION`, else the build-time
//!   `DEMO_WEB_VERSION`, else `v1`.
//! - Exits 0 on SIGTERM/SIGINT (it is PID 1 in its container, so it must handle them itself).
//!   With env `SHUTDOWN_DELAY=<seconds>` it first reports not ready and keeps serving that long,
//!   the usual drain that lets Endpoints and kube-proxy stop sending it traffic before it goes.
//!
//! Only std and nix (for signals), so it links statically.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

/// Runtime-flippable probe results.
struct Probes {
    healthy: AtomicBool,
    ready: AtomicBool,
}

fn version() -> String {
    std::env::var("VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| option_env!("DEMO_WEB_VERSION").map(str::to_string))
        .unwrap_or_else(|| "v1".to_string())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

fn port() -> u16 {
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        if let Some(v) = args[i].strip_prefix("--port=") {
            return v.parse().unwrap_or(8080);
        }
        if args[i] == "--port" || args[i] == "-p" {
            return args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(8080);
        }
        i += 1;
    }
    std::env::var("PORT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8080)
}

/// How long to keep serving after SIGTERM (env SHUTDOWN_DELAY in seconds, fractions allowed).
fn shutdown_delay() -> Duration {
    std::env::var("SHUTDOWN_DELAY")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        .map(Duration::from_secs_f64)
        .unwrap_or_default()
}

/// Returns (status, body) for a request line's method and path.
fn route(method: &str, path: &str, probes: &Probes, local_ip: &str) -> (u16, String) {
    let path = path.split('?').next().unwrap_or("/");
    let flag = |b: bool| {
        if b {
            (200, "ok\n".to_string())
        } else {
            (503, "fail\n".to_string())
        }
    };
    match (method, path) {
        ("GET" | "HEAD", "/") => (
            200,
            format!(
                "hostname={} ip={} version={}\n",
                hostname(),
                local_ip,
                version()
            ),
        ),
        ("GET" | "HEAD", "/healthz") => flag(probes.healthy.load(Ordering::SeqCst)),
        ("GET" | "HEAD", "/ready") => flag(probes.ready.load(Ordering::SeqCst)),
        ("GET" | "POST", "/healthz/fail") => {
            probes.healthy.store(false, Ordering::SeqCst);
            (200, "healthz now fail\n".to_string())
        }
        ("GET" | "POST", "/healthz/ok") => {
            probes.healthy.store(true, Ordering::SeqCst);
            (200, "healthz now ok\n".to_string())
        }
        ("GET" | "POST", "/ready/fail") => {
            probes.ready.store(false, Ordering::SeqCst);
            (200, "ready now fail\n".to_string())
        }
        ("GET" | "POST", "/ready/ok") => {
            probes.ready.store(true, Ordering::SeqCst);
            (200, "ready now ok\n".to_string())
        }
        ("GET" | "HEAD", "/version") => (200, format!("{}\n", version())),
        _ => (404, "not found\n".to_string()),
    }
}

fn handle(stream: TcpStream, probes: &Probes) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let local_ip = stream
        .local_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain headers (bounded).
    for _ in 0..100 {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("/");
    let (status, body) = route(method, path, probes, &local_ip);
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let mut out = stream;
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    out.write_all(head.as_bytes())?;
    if method != "HEAD" {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}

fn main() {
    // Block termination signals before any thread exists; one thread waits for them.
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    if let Err(e) = set.thread_block() {
        eprintln!("demo-web: cannot block signals: {e}");
        std::process::exit(1);
    }
    let probes = Arc::new(Probes {
        healthy: AtomicBool::new(true),
        ready: AtomicBool::new(true),
    });
    let drain = shutdown_delay();
    let on_signal = Arc::clone(&probes);
    std::thread::spawn(move || {
        if let Ok(sig) = set.wait() {
            if drain.is_zero() {
                eprintln!("demo-web: got {sig}, exiting");
            } else {
                eprintln!("demo-web: got {sig}, not ready, exiting in {drain:?}");
                on_signal.ready.store(false, Ordering::SeqCst);
                std::thread::sleep(drain);
            }
        }
        std::process::exit(0);
    });

    let port = port();
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo-web: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    println!("demo-web {} listening on :{port}", version());
    for stream in listener.incoming().flatten() {
        let probes = Arc::clone(&probes);
        std::thread::spawn(move || {
            let _ = handle(stream, &probes);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes() -> Probes {
        Probes {
            healthy: AtomicBool::new(true),
            ready: AtomicBool::new(true),
        }
    }

    #[test]
    fn root_reports_ip_and_version() {
        let (code, body) = route("GET", "/", &probes(), "10.0.0.5");
        assert_eq!(code, 200);
        assert!(body.contains("ip=10.0.0.5"), "{body}");
        assert!(body.contains("version="), "{body}");
        assert_eq!(body.lines().count(), 1);
    }

    #[test]
    fn probes_flip() {
        let p = probes();
        assert_eq!(route("GET", "/ready", &p, "").0, 200);
        route("POST", "/ready/fail", &p, "");
        assert_eq!(route("GET", "/ready", &p, "").0, 503);
        route("POST", "/ready/ok", &p, "");
        assert_eq!(route("GET", "/ready", &p, "").0, 200);
        route("POST", "/healthz/fail", &p, "");
        assert_eq!(route("GET", "/healthz", &p, "").0, 503);
        assert_eq!(route("GET", "/nope", &p, "").0, 404);
    }
}
