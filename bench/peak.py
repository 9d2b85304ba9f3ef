"""Peak resident memory of a child process alone, for the bench scripts."""

import time


def watched(proc):
    """Wait for ``proc`` (a subprocess.Popen) and return the peak resident memory, in MB, of
    its own address space (VmHWM): getrusage's maxrss would include the parent's memory, which
    Linux carries across fork and exec."""
    peak_kb = 0
    while proc.poll() is None:
        peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
        time.sleep(0.02)
    return peak_kb / 1024


def _vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
