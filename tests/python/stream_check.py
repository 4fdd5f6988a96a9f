"""exec and attach through the official Python client's `kubernetes.stream`: text frames (str
data) and binary frames (bytes), the v5.channel.k8s.io close signal giving the process end of
file on stdin, exit codes from the error channel, and v4.channel.k8s.io (what older clients
speak, and what a newer one speaks when asked).

Usage: stream_check.py KUBECONFIG EXEC_POD ATTACH_POD
(EXEC_POD runs a shell-capable container; ATTACH_POD's container reads stdin and answers each
line with `got:<line>`). Exits non-zero with the failing check's message."""

import sys

from kubernetes import client, config
from kubernetes.stream import stream
from kubernetes.stream import ws_client


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def interactive(api, pod, command):
    return stream(api.connect_get_namespaced_pod_exec, pod, "default", command=command,
                  stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)


def echo_through(resp, what):
    """A str line (a text frame) and a bytes line (a binary frame) come back from `cat`."""
    resp.write_stdin("echo hi\n")
    got = resp.readline_stdout(timeout=20)
    check(got == "echo hi", f"{what}: text frame echoed, got {got!r}")
    resp.write_stdin(b"bytes \xc3\xa9\n")
    got = resp.readline_stdout(timeout=20)
    check(got == "bytes \u00e9", f"{what}: binary frame echoed, got {got!r}")


def exit_code(api, pod, code):
    resp = stream(api.connect_get_namespaced_pod_exec, pod, "default",
                  command=["sh", "-c", f"echo before-exit; exit {code}"],
                  stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=30)
    check(not resp.is_open(), f"exit {code}: the connection closed")
    check(resp.returncode == code, f"exit {code}: returncode {resp.returncode}")


def main(kubeconfig, exec_pod, attach_pod):
    config.load_kube_config(config_file=kubeconfig)
    api = client.CoreV1Api()

    # Non-interactive: the whole output.
    out = stream(api.connect_get_namespaced_pod_exec, exec_pod, "default",
                 command=["sh", "-c", "echo out-line"], stderr=True, stdin=False,
                 stdout=True, tty=False)
    check("out-line" in out, f"plain exec output {out!r}")

    # Interactive exec, with whatever protocol the client negotiates by default.
    resp = interactive(api, exec_pod, ["cat"])
    protocol = getattr(resp, "subprotocol", None) or "v4.channel.k8s.io"
    echo_through(resp, f"exec ({protocol})")
    if protocol == "v5.channel.k8s.io":
        # Closing stdin ends cat: the exit status arrives and the connection closes.
        resp.close_channel(0)
        resp.run_forever(timeout=30)
        check(not resp.is_open(), "v5: the connection closed after stdin did")
        check(resp.returncode == 0, f"v5: returncode {resp.returncode}")
    else:
        resp.close()

    # A newer client asked for v4 speaks it (no close signal there: the client hangs up).
    if hasattr(ws_client, "V5_CHANNEL_PROTOCOL"):
        cfg = client.Configuration.get_default_copy()
        url = ws_client.get_websocket_url(
            f"{cfg.host}/api/v1/namespaces/default/pods/{exec_pod}/exec"
            "?command=cat&stdin=true&stdout=true&stderr=true")
        v4 = ws_client.WSClient(cfg, url, headers={"sec-websocket-protocol": "v4.channel.k8s.io"},
                                capture_all=True)
        check(v4.subprotocol in (None, "v4.channel.k8s.io"), f"v4 asked, got {v4.subprotocol}")
        echo_through(v4, "exec (v4 asked)")
        v4.close()

    # Exit codes travel on the error channel.
    exit_code(api, exec_pod, 0)
    exit_code(api, exec_pod, 3)

    # Attach to a container that keeps stdin open.
    resp = stream(api.connect_get_namespaced_pod_attach, attach_pod, "default", stdin=True,
                  stdout=True, stderr=True, tty=False, _preload_content=False)
    resp.write_stdin("ping\n")
    got = resp.readline_stdout(timeout=20)
    check(got == "got:ping", f"attach: text frame answered, got {got!r}")
    resp.write_stdin(b"pong\n")
    got = resp.readline_stdout(timeout=20)
    check(got == "got:pong", f"attach: binary frame answered, got {got!r}")
    resp.close()
    print(f"ok ({protocol})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
