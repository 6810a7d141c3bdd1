"""What a Tracker's first start() and stop() avoid (typing, socket, datetime, getpass, per-class compiled methods),
and that each lighter path gives what the standard library's gave (what it costs: ``benchmarks/peer_probe.py cold``)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import typing
from datetime import datetime, timezone

import pytest

from carbonstep import Tracker
from carbonstep._record import DataclassMethods, NamedTuple
from carbonstep.report.builder import utc_iso
from carbonstep.report.context import host_name, login_name

AVOIDED = {"typing", "socket", "datetime", "getpass", "numbers"}


def _loaded(code: str) -> set[str]:
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONSTEP_")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env,
                         timeout=300).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_a_run_loads_none_of_the_modules_it_does_without() -> None:
    bare = _loaded("pass")
    run = _loaded("from carbonstep import Tracker\nTracker(intensity=100, interval_s=0.05).start().stop()")
    assert (run - bare) & AVOIDED == set()
    assert "carbonstep.accounting.regions" not in run  # a constant intensity reads no region table


class Light(NamedTuple):
    """A record."""

    name: str
    count_of: int = 0
    note: str | None = None

    def twice(self) -> int:
        """Twice the count."""
        return 2 * self.count_of


class Typed(typing.NamedTuple):
    """A record."""

    name: str
    count_of: int = 0
    note: str | None = None

    def twice(self) -> int:
        """Twice the count."""
        return 2 * self.count_of


def test_named_tuple_is_typings_without_typing() -> None:
    light, typed = Light("a", 2), Typed("a", 2)
    assert repr(light) == repr(typed).replace("Typed", "Light") == "Light(name='a', count_of=2, note=None)"
    assert light == ("a", 2, None) and light.twice() == typed.twice() == 4 and hash(light) == hash(typed)
    assert (Light._fields, Light._field_defaults) == (Typed._fields, Typed._field_defaults)
    assert Light.__doc__ == "A record." and Light.__module__ == __name__ and Light.__qualname__ == "Light"
    assert light._replace(note="n") == Light("a", 2, "n") and Light(name="b").count_of == 0
    with pytest.raises(AttributeError):
        light.name = "b"  # type: ignore[misc]
    with pytest.raises(TypeError):
        class Bad(NamedTuple):  # noqa: F841 - a field without a default after one with a default
            a: int = 0
            b: int
    with pytest.raises(AttributeError):
        class Worse(NamedTuple):  # noqa: F841 - as typing.NamedTuple: _make may not be replaced
            a: int

            def _make(self) -> None: ...


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Shared(DataclassMethods):
    """Methods written once."""

    a: int
    b: tuple[int, ...] = ()
    c: object = dataclasses.field(default_factory=tuple)
    d: object = None
    e: int = dataclasses.field(default=0, repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Compiled:
    """Methods compiled by dataclasses."""

    a: int
    b: tuple[int, ...] = ()
    c: object = dataclasses.field(default_factory=tuple)
    d: object = None
    e: int = dataclasses.field(default=0, repr=False, compare=False)


def test_dataclass_methods_are_what_dataclasses_compiles() -> None:
    rng = random.Random(7)
    for _ in range(200):
        a, b, e = rng.randint(-3, 3), tuple(rng.randint(0, 2) for _ in range(rng.randint(0, 3))), rng.randint(0, 1)
        shared, compiled = Shared(a, b, d=a % 2, e=e), Compiled(a, b, d=a % 2, e=e)
        assert repr(shared) == repr(compiled).replace("Compiled", "Shared")
        assert hash(shared) == hash(compiled)
        other = (rng.randint(-3, 3), b, (), (rng.randint(-3, 3)) % 2, 1 - e)
        assert (shared == Shared(*other)) == (compiled == Compiled(*other))
        assert (shared != Shared(*other)) == (compiled != Compiled(*other))
    assert Shared(1) != Compiled(1) and Shared(1).__eq__(1) is NotImplemented
    with pytest.raises(TypeError):
        hash(Shared(1, c={"x": 1}))  # a dict field: unhashable, as the compiled one
    with pytest.raises(dataclasses.FrozenInstanceError):
        Shared(1).a = 2  # type: ignore[misc]
    loop = Shared(1, d=[])
    loop.d.append(loop)  # type: ignore[union-attr]
    assert repr(loop) == "Shared(a=1, b=(), c=(), d=[...])"
    assert dataclasses.asdict(Shared(1, (2,))) == dataclasses.asdict(Compiled(1, (2,)))


def test_a_report_and_its_parts_keep_the_dataclass_api() -> None:
    report = Tracker(intensity=100, interval_s=0.05).start().stop()
    for record in (report, report.intensity, *report.devices):
        assert dataclasses.is_dataclass(record) and dataclasses.replace(record) == record
    assert hash(report.intensity) == hash(dataclasses.replace(report.intensity))
    assert dataclasses.replace(report, status="failed").status == "failed"
    assert repr(report.intensity).startswith("Intensity(g_per_kwh=100.0, region=None,")


def test_utc_iso_is_datetimes_iso_format_with_milliseconds() -> None:
    rng = random.Random(11)
    stamps = [0.0, -0.0, 1.7e9, -1.5, 1e9 + 0.9999995, 1e9 + 0.0004995, 253402300799.999, 1.5e-6, 2.5e-6]
    stamps += [rng.uniform(-1e9, 4e9) for _ in range(20_000)]
    stamps += [rng.randint(0, 2**31) + rng.choice([0.5e-6, 1.5e-6, 0.9999995, 0.0009995]) for _ in range(5_000)]
    for stamp in stamps:
        expected = datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="milliseconds")
        assert utc_iso(stamp) == expected, stamp


def test_host_name_and_login_name_are_sockets_and_getpasss() -> None:
    import getpass
    import socket

    assert host_name() == socket.gethostname()
    if not os.environ.get("SLURM_JOB_USER"):
        assert login_name() == getpass.getuser()


def test_the_login_name_falls_back_to_the_password_database(monkeypatch: pytest.MonkeyPatch) -> None:
    pwd = pytest.importorskip("pwd")
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME", "SLURM_JOB_USER"):
        monkeypatch.delenv(name, raising=False)
    assert login_name() == pwd.getpwuid(os.getuid())[0]
    monkeypatch.setenv("USERNAME", "last")
    monkeypatch.setenv("USER", "second")
    assert login_name() == "second"  # getpass's order: LOGNAME, USER, LNAME, USERNAME


def test_the_machine_is_read_for_the_embodied_block_only_when_a_server_part_is_charged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonstep.accounting import embodied_run
    from carbonstep.accounting.embodied import EmbodiedSettings
    from carbonstep.report.record import Device

    def unread() -> embodied_run.Host:
        raise AssertionError("host facts read for a run that charges no server part")

    monkeypatch.setattr(embodied_run, "host_facts", unread)
    cpu = Device("cpu-estimate:process", "cpu", "estimate", "AMD EPYC", 1e-6)
    block = embodied_run.embodied_record([cpu], 60.0, "process", 1e-5, EmbodiedSettings())
    product, host = embodied_run.host_names()
    assert host == host_name()
    assert block is not None and block["notes"][0].startswith(f"this server ({product or host}): no embodied figure")
    gpu = Device("gpu:0", "gpu", "counter", "NVIDIA H100 80GB HBM3 [GPU-a]: NVML", 1e-3)
    with pytest.raises(AssertionError, match="host facts read"):
        embodied_run.embodied_record([gpu], 60.0, "process", 1e-5, EmbodiedSettings())
