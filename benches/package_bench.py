#!/usr/bin/env python3
"""Install-to-first-profile: Flare's Debian package beside Debian's linux-perf.

For each tool, interleaved over --runs rounds: dpkg -i its .deb, then record
the same short command (flare record -o / perf record -g -o), and time from
the start of dpkg -i to the profile file being written; the package is then
removed again (perf is reinstalled at the end if it was installed before).
Also reports the .deb sizes, installed sizes and binary sizes.

  scripts/package && python3 benches/package_bench.py --runs 5

Needs root. linux-perf's .deb is fetched with `apt-get download` (Debian's
registry); its dependencies are already installed by scripts/install-deps.
"""

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = ["sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"]


def run(args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def installed(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return "install ok installed" in r.stdout


def installed_size_kib(package):
    return int(run(["dpkg-query", "-W", "-f=${Installed-Size}", package]).stdout)


def install_to_profile(deb, record, out):
    if os.path.exists(out):
        os.remove(out)
    start = time.monotonic()
    run(["dpkg", "-i", deb])
    run(record)
    elapsed = time.monotonic() - start
    if not os.path.getsize(out):
        raise SystemExit(f"{record[0]} wrote no profile")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deb", help="Flare's package (default: the newest .build/package/flare_*.deb)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark installs and removes packages")
    flare_deb = args.deb or max(glob.glob(os.path.join(REPO, ".build/package/flare_*.deb")), key=os.path.getmtime, default=None)
    if not flare_deb:
        raise SystemExit("no .build/package/flare_*.deb: run scripts/package first")

    work = tempfile.mkdtemp(prefix="flare-package-bench.")
    perf_was_installed = installed("linux-perf")
    try:
        run(["apt-get", "download", "linux-perf"], cwd=work)
        perf_deb = glob.glob(os.path.join(work, "linux-perf_*.deb"))[0]
        # name: (deb, record command, profile it writes, package, its binary)
        tools = {
            "flare": (flare_deb, ["flare", "record", "-o", os.path.join(work, "flare.pb.gz"), "--", *WORKLOAD],
                      os.path.join(work, "flare.pb.gz"), "flare", "/usr/bin/flare"),
            "perf": (perf_deb, ["perf", "record", "-q", "-g", "-o", os.path.join(work, "perf.data"), "--", *WORKLOAD],
                     os.path.join(work, "perf.data"), "linux-perf", "/usr/bin/perf"),
        }
        times = {name: [] for name in tools}
        sizes = {}
        for round_ in range(args.runs):
            for name, (deb, record, out, package, binary) in tools.items():
                subprocess.run(["dpkg", "-P", package], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[name].append(install_to_profile(deb, record, out))
                sizes[name] = (os.path.getsize(deb), installed_size_kib(package) * 1024, os.path.getsize(binary), binary)
                subprocess.run(["dpkg", "-P", package], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"round {round_ + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in tools), flush=True)
    finally:
        if perf_was_installed and not installed("linux-perf"):
            run(["apt-get", "install", "-y", "-qq", "linux-perf"])
        shutil.rmtree(work, ignore_errors=True)

    mib = 1024 * 1024
    print()
    print(f"{args.runs} interleaved rounds, medians")
    print("| measure | Flare (flare .deb) | perf (linux-perf .deb) | ratio flare/perf |")
    print("|---|---|---|---|")
    f, p = sizes["flare"], sizes["perf"]
    print(f"| .deb size | {f[0] / mib:.1f} MiB | {p[0] / mib:.1f} MiB | {f[0] / p[0]:.2f} |")
    print(f"| installed size | {f[1] / mib:.1f} MiB | {p[1] / mib:.1f} MiB | {f[1] / p[1]:.2f} |")
    print(f"| binary | {f[2] / mib:.1f} MiB ({f[3]}) | {p[2] / mib:.1f} MiB ({p[3]}) | {f[2] / p[2]:.2f} |")
    tf, tp = statistics.median(times["flare"]), statistics.median(times["perf"])
    print(f"| dpkg -i to first profile written | {tf:.2f} s | {tp:.2f} s | {tf / tp:.2f} |")


if __name__ == "__main__":
    main()
