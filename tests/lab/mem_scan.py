#!/usr/bin/python3
"""Looks for secrets in a running process's memory (root reads /proc/PID/mem of a process of
nobody's).

usage: mem_scan.py PID NAME:text:VALUE|NAME:hex:HEX ...

Every writable private mapping (heap, anonymous memory, stacks) is searched for each needle's
bytes. Prints one line per needle, "NAME: absent" or "NAME: N copies at 0x...", and exits 0 when
no needle is found, 1 when one is, 2 on a usage or read error.
"""
import re
import sys


def needles(args):
    out = []
    for arg in args:
        name, kind, value = arg.split(":", 2)
        if kind == "text":
            out.append((name, value.encode()))
        elif kind == "hex":
            out.append((name, bytes.fromhex(value)))
        else:
            raise ValueError(f"{arg}: kind must be text or hex")
        if len(out[-1][1]) < 8:
            raise ValueError(f"{name}: a needle under 8 bytes would match by chance")
    return out


def regions(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
            start, end, perms, path = int(m[1], 16), int(m[2], 16), m[3], m[4]
            # writable and private: where a process keeps what it read and made (code and
            # read-only data come from files on disk, and [vvar]/[vsyscall] cannot be read)
            # (a sanitizer build reserves terabytes of shadow memory, mostly never touched: skip
            # mappings over 4 GiB rather than read them page by page)
            if perms[1] == "w" and perms[3] == "p" and path not in ("[vvar]", "[vsyscall]") \
                    and end - start <= 4 << 30:
                yield start, end, path


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    pid = int(sys.argv[1])
    try:
        wanted = needles(sys.argv[2:])
    except ValueError as e:
        print(f"mem_scan: {e}", file=sys.stderr)
        return 2
    found = {name: [] for name, _ in wanted}
    scanned = 0
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end, _ in regions(pid):
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            scanned += len(data)
            for name, needle in wanted:
                at = data.find(needle)
                while at >= 0:
                    found[name].append(start + at)
                    at = data.find(needle, at + 1)
    if scanned == 0:
        print("mem_scan: nothing could be read", file=sys.stderr)
        return 2
    print(f"mem_scan: {scanned // 1024} KiB of pid {pid} searched")
    for name, _ in wanted:
        where = found[name]
        if where:
            print(f"{name}: {len(where)} copies at " + " ".join(hex(a) for a in where[:4]))
        else:
            print(f"{name}: absent")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
