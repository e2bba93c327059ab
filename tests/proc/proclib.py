"""What the process tests (tests/proc/*_test.py) share: failing with a message, a free port, a
clean stop."""
import os
import signal
import socket
import subprocess
import sys


def fail(msg):
    """Ends the test with status 1, the script's name and msg on stderr."""
    print(f"{os.path.basename(sys.argv[0])}: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def term_exits_0(proc, log_text, what="", wait_s=10):
    """Sends proc SIGTERM and fails unless it exits with status 0 within wait_s seconds; log_text()
    gives the log to show when it does not, what (if any) names the case."""
    prefix = f"{what}: " if what else ""
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        fail(f"{prefix}no exit within {wait_s} s of SIGTERM")
    if rc != 0:
        fail(f"{prefix}exit status {rc} after SIGTERM, not 0:\n{log_text()}")
