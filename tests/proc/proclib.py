"""What the process tests (tests/proc/*_test.py) share: failing with a message, a free port."""
import os
import socket
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
