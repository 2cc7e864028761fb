"""Finding and driving the Windows toolchain here: mingw-w64 to build, Wine to run.

One Wine prefix is shared by every test and every run (creating one costs ~12 s and
~700 MB): ``$OVERLAPIO_WINEPREFIX``, else ``$XDG_CACHE_HOME/overlapio-wine``, else
``~/.cache/overlapio-wine``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bindcheck import GCC, INSTALL_HINT

# Quiet, headless Wine: no debug chatter, no Mono/Gecko installers, no menu entries.
WINE_ENV = {
    "WINEDEBUG": "-all",
    "WINEDLLOVERRIDES": "mscoree,mshtml=;winemenubuilder.exe=d",
}
CFLAGS = ["-O1", "-Wall", "-std=c11"]
LIBS = ["-lws2_32", "-lmswsock"]


def wine_binary() -> str | None:
    """The 64-bit Wine loader. Debian's wine64 puts it in /usr/lib/wine only."""
    for cand in ("/usr/lib/wine/wine64", shutil.which("wine64"), shutil.which("wine")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def wineserver_binary() -> str | None:
    for cand in (shutil.which("wineserver"), "/usr/lib/wine/wineserver"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


#: on Windows the contract programs run natively: no Wine, no prefix
NATIVE = sys.platform == "win32"


def missing() -> str | None:
    """None when mingw-w64 and Wine are both usable, else a skip reason."""
    what = []
    if shutil.which(GCC) is None:
        what.append(GCC)
    if NATIVE:
        return "%s not found (mingw-w64's gcc, e.g. MSYS2 mingw64)" % GCC if what else None
    if wine_binary() is None:
        what.append("wine64")
    if wineserver_binary() is None:
        what.append("wineserver")
    return "%s not found; %s" % (", ".join(what), INSTALL_HINT) if what else None


def prefix_dir() -> Path:
    if os.environ.get("OVERLAPIO_WINEPREFIX"):
        return Path(os.environ["OVERLAPIO_WINEPREFIX"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache, "overlapio-wine")


def wine_env(prefix: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(WINE_ENV)
    env["WINEPREFIX"] = str(prefix)
    env.pop("DISPLAY", None)   # headless on purpose
    return env


def _run_to_files(argv: list[str], env: dict[str, str], timeout: float, cwd: str | None = None
                  ) -> subprocess.CompletedProcess:
    """Run argv with stdout/stderr in files, not pipes.

    Wine leaves helper processes behind (wineserver, services.exe, winedevice.exe...)
    that inherit the first program's stdout/stderr; with pipes, waiting for EOF would
    block until they exit. With files, only the program itself is waited for.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=err, timeout=timeout, cwd=cwd, check=False)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            argv, proc.returncode, out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"))


def ensure_prefix(prefix: Path, env: dict[str, str]) -> None:
    """Create the prefix once; later runs find system.reg and skip this.

    ``wineboot -i`` returns while the wineserver it started still holds the new
    registry in memory: system.reg is written only when that server exits. So
    wait for it (``wineserver -w``) before looking. A lock keeps two test runs
    sharing one prefix from booting it at the same time.
    """
    import fcntl

    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / (prefix.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (prefix / "system.reg").is_file():
            return
        boot = _run_to_files([wine_binary(), "wineboot", "-i"], env, timeout=300)
        subprocess.run([wineserver_binary(), "-w"], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
                       check=False)
        if not (prefix / "system.reg").is_file():
            raise RuntimeError("wineboot did not create a prefix in %s (exit %s): %s"
                               % (prefix, boot.returncode, (boot.stderr or boot.stdout)[-2000:]))


def start_wineserver(env: dict[str, str]) -> None:
    """Start a wineserver that stays 30 s after its last program (if none runs yet).

    It is never killed: sessions share the prefix, and killing the server ends
    every program running on it, another session's too (seen as a contract
    program exiting midway). ``.ci/run`` kills its private prefix's server itself.
    """
    # it daemonizes: no pipes, or run() would wait for the daemon's end
    subprocess.run([wineserver_binary(), "-p30"], env=env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                   check=False)   # exit 2: a server for this prefix is already running


def build(source: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([GCC, *CFLAGS, "-o", str(out), str(source), *LIBS],
                          capture_output=True, text=True, timeout=120)


def run(exe: Path, env: dict[str, str], timeout: float = 60, args: list[str] = ()
        ) -> subprocess.CompletedProcess:
    argv = [str(exe)] if NATIVE else [wine_binary(), str(exe)]
    return _run_to_files(argv + list(args), env, timeout, cwd=str(exe.parent))
