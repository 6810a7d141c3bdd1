"""The measurement's life: start, stop, fork, a second fit(), accumulation, signals during the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import pytest

from carbonstep import Tracker
from carbonstep.measure.readers.base import counter_delta
from carbonstep.measure.readers.process import ProcessTree
from carbonstep.measure.sampler import Sampler
from carbonstep.measure.totals import MAX_PENDING_MARKS, EnergyTotals
from carbonstep.testing import CounterReader, ManualClock
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession

KWH = 3.6e6


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts /proc/self/fd")
def test_start_and_stop_leave_no_file_descriptor_open() -> None:
    Tracker(intensity=100).start().stop()  # the first one loads what stays loaded
    before = _open_fds()
    for _ in range(150):
        Tracker(intensity=100, interval_s=10).start().stop()
    assert _open_fds() - before <= 2  # was 2 more per Tracker (/proc/<pid>/stat and statm)


def test_marks_after_stop_are_ignored_and_pending_marks_are_bounded() -> None:
    tracker = Tracker(intensity=100, readers=[CounterReader("c", "gpu", lambda: 1.0)], interval_s=10).start()
    for _ in range(MAX_PENDING_MARKS + 10):  # the sampler sleeps 10 s: all of them wait for it
        tracker.mark(step=1)
    assert len(tracker.view.totals.pending) == MAX_PENDING_MARKS
    report = tracker.stop()
    assert any("marks waited" in w for w in report.warnings)
    for _ in range(100_000):
        tracker.mark(step=2)
    assert len(tracker.view.totals.pending) == 0 and not tracker.running


def test_two_threads_stopping_at_once_get_one_report() -> None:
    slow = CounterReader("slow", "gpu", lambda: time.sleep(0.2) or 5.0)
    tracker = Tracker(intensity=100, readers=[slow], interval_s=0.05).start()
    reports: list[Any] = []
    threads = [threading.Thread(target=lambda: reports.append(tracker.stop())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(reports) == 2 and reports[0] is reports[1]


def test_a_clock_that_starts_at_zero_keeps_the_run_start() -> None:
    clock = ManualClock(start=0.0)
    reader = CounterReader("c", "gpu", lambda: clock.now * 100.0)
    totals = EnergyTotals([reader], clock=clock)
    sampler = Sampler([reader], totals.ingest, 1.0, clock=clock)
    for _ in range(3):
        sampler.poll()
        clock.advance(1.0)
    assert totals.t0 == 0.0 and totals.duration_s == pytest.approx(2.0)  # was 0: `t0 or t`


def test_a_poll_waits_for_a_hung_read_once_and_stop_names_it() -> None:
    answer = threading.Event()
    reads = [0]

    def joules() -> float:
        reads[0] += 1
        if reads[0] >= 3:
            answer.wait()
        return reads[0] * 1.0

    reader = CounterReader("stuck", "gpu", joules)
    totals = EnergyTotals([reader])
    sampler = Sampler([reader], totals.ingest, 0.02, wait_s=0.5)
    sampler.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert sampler.poll() is None and sampler.poll() is None  # the second does not wait again
    sampler.stop()
    assert time.monotonic() - started < 0.5 * 2 + 0.5
    assert sampler.hung is not None and sampler.hung.index == 0 and sampler.late_polls == 1
    answer.set()  # the read returns after stop(): its sample is dropped
    time.sleep(0.1)
    assert totals.joules[0] == pytest.approx(1.0)  # reads 1 and 2 only


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")
def test_a_grandchild_reaped_by_its_parent_is_not_counted_twice() -> None:
    tree = ProcessTree(refresh_s=0.0)
    burn = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.4: pass')"
    first = last = tree.cpu_seconds()
    counted = 0.0
    wrapper = subprocess.Popen(["bash", "-c", f"{sys.executable} -c \"{burn}\"; sleep 0.4"])
    while wrapper.poll() is None:  # the grandchild burns, exits, is reaped by bash; then bash is reaped by us
        now = tree.cpu_seconds()
        counted += counter_delta(last, now, None)
        last = now
        time.sleep(0.01)
    for _ in range(3):
        now = tree.cpu_seconds()
        counted += counter_delta(last, now, None)
        last = now
    tree.close()
    assert last - first >= 0.35  # the grandchild's time is in (through bash's and then our cutime)
    assert counted == pytest.approx(last - first, abs=0.02)  # and only once


class RecordingSink:
    """A Sink that keeps what it is given; ``on_metrics`` runs inside log_metrics."""

    def __init__(self, on_metrics: Any = None) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.on_metrics = on_metrics
        self.closed = 0

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.metrics.append((step, dict(metrics)))
        if self.on_metrics is not None:
            self.on_metrics()

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        pass

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        pass

    def close(self, status: str = "FINISHED") -> str | None:
        self.closed += 1
        return None


def _session(steps: list[int]) -> TrainingSession:
    reader = CounterReader("steps", "gpu", lambda: steps[0] * 10.0)
    options = TrainingOptions(intensity=100.0, tracker={"readers": [reader], "interval_s": 0.02}, summary=False)
    return TrainingSession(options)


def test_a_second_run_of_one_session_is_a_fresh_measurement(tmp_path: Path) -> None:
    steps = [0]
    session = _session(steps)
    reports = []
    for _ in range(2):
        session.begin(RecordingSink(), tmp_path, 1)
        for step in range(1, 11):
            steps[0] += 1
            session.step(step, 0)
        reports.append(session.end())
    assert reports[0].run_id != reports[1].run_id and reports[1].status == "completed"
    assert [r.energy_kwh * KWH for r in reports] == pytest.approx([100.0, 100.0])  # not 200: fresh
    assert reports[1].extra["cumulative_with_resume"]["energy_kwh"] * KWH == pytest.approx(100.0)
    assert len(list(tmp_path.glob("carbonstep-*.json"))) == 2


def test_accumulated_micro_batches_make_one_mark_one_log_one_reduction(tmp_path: Path) -> None:
    steps = [0]
    session = _session(steps)
    sink = RecordingSink()
    session.begin(sink, tmp_path, 1)
    reductions = []
    job_totals = session.job_totals
    session.job_totals = lambda snap: reductions.append(1) or job_totals(snap)  # type: ignore[method-assign]
    for batch in range(16):  # 4 micro-batches of 8 samples per optimizer step
        steps[0] += 1
        session.step(batch // 4, 0, 8, optimizer_stepped=batch % 4 == 3)
    report = session.end()
    assert [step for step, _ in sink.metrics[:-1]] == [0, 1, 2, 3]
    assert len(reductions) == 4
    assert report.epochs[0].steps == 4 and report.epochs[0].count == 128


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals: main thread")
def test_sigterm_while_ending_waits_for_the_report(tmp_path: Path) -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        steps = [0]
        session = _session(steps)
        sink = RecordingSink(on_metrics=lambda: session._ending and not received and os.kill(os.getpid(),
                                                                                           signal.SIGTERM))
        session.begin(sink, tmp_path, 1)
        for step in range(1, 6):
            steps[0] = step
            session.step(step, 0)
        report = session.end()
        assert report.status == "completed"  # the signal waited: the report was not cut short
        assert received == [signal.SIGTERM]  # then it did what it did before, once
        assert len(list(tmp_path.glob("carbonstep-*.json"))) == 1 and sink.closed == 1
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- real Lightning runs --------------------------------------------------------------------------------
def _trainer(pl: Any, callback: Any, root: Path, **kw: Any) -> Any:
    options = {"max_epochs": 1, "logger": False, "log_every_n_steps": 1, "enable_checkpointing": False,
               "enable_progress_bar": False, "enable_model_summary": False, **kw}
    return pl.Trainer(callbacks=[callback], default_root_dir=root, **options)


@pytest.mark.slow
def test_a_second_fit_is_a_fresh_measurement_with_its_own_report(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    from carbonstep.lightning import CarbonCallback

    from .lightning_model import StepEnergyReader, loaders, make_module

    reader = StepEnergyReader(10.0)
    carbon = CarbonCallback(region="FR", mlflow=False, output_dir=tmp_path, readers=[reader], interval_s=0.02,
                            summary=False)
    reports = []
    for _ in range(2):  # the same callback in two fit() calls (was: "this Tracker has stopped")
        trainer = _trainer(pl, carbon, tmp_path)
        reader.trainer = trainer
        trainer.fit(make_module(pl), *loaders())
        reports.append(carbon.report)
    assert reports[0].run_id != reports[1].run_id
    assert [r.energy_kwh * KWH for r in reports] == pytest.approx([80.0, 80.0])  # 8 steps × 10 J each, not 160
    assert [r.status for r in reports] == ["completed", "completed"]


@pytest.mark.slow
def test_gradient_accumulation_logs_and_reduces_once_per_optimizer_step(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    from carbonstep.lightning import CarbonCallback

    from .lightning_model import StepEnergyReader, loaders, make_module

    reader = StepEnergyReader(10.0)
    carbon = CarbonCallback(region="FR", mlflow=False, output_dir=tmp_path, readers=[reader], interval_s=0.02,
                            summary=False, log_every_n_steps=1)
    reductions: list[int] = []
    job_totals = carbon.session.job_totals

    def counted(snap: Any) -> Any:
        totals = job_totals(snap)
        reductions.append(1)
        return totals

    carbon.session.job_totals = counted  # type: ignore[method-assign]
    trainer = _trainer(pl, carbon, tmp_path, accumulate_grad_batches=4, max_epochs=2)
    reader.trainer = trainer
    trainer.fit(make_module(pl), *loaders())  # 8 batches per epoch: 2 optimizer steps per epoch
    report = carbon.report
    assert trainer.global_step == 4
    assert [e.steps for e in report.epochs] == [2, 2] and [e.count for e in report.epochs] == [256, 256]
    assert len(reductions) == 4 + 2 + 2 + 1  # per optimizer step (was 4 per step), validation, epoch end; start
    assert report.energy_kwh * KWH == pytest.approx(40.0)


@pytest.mark.slow
def test_dataloader_workers_neither_count_twice_nor_end_the_run(tmp_path: Path) -> None:
    import lightning.pytorch as pl
    import torch

    from carbonstep.lightning import CarbonCallback

    from .lightning_model import StepEnergyReader, make_module

    x = torch.randn(128, 8)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    train = torch.utils.data.DataLoader(data, batch_size=32, num_workers=2, multiprocessing_context="fork")
    reader = StepEnergyReader(10.0)
    carbon = CarbonCallback(region="FR", mlflow=False, output_dir=tmp_path, readers=[reader], interval_s=0.02,
                            summary=False)
    trainer = _trainer(pl, carbon, tmp_path, max_epochs=2)
    reader.trainer = trainer
    trainer.fit(make_module(pl), train)  # workers forked with the tracker running, twice
    assert carbon.report.status == "completed"
    assert carbon.report.energy_kwh * KWH == pytest.approx(80.0)  # 8 steps × 10 J: nothing from the workers
    assert len(list(tmp_path.glob("carbonstep-*.json"))) == 1  # no worker wrote a report at its exit


@pytest.mark.slow
def test_lightning_sigterm_and_sigint_at_random_points(tmp_path: Path) -> None:
    import random

    from .test_faults import SIGNAL_BOUND_S, _check_signalled_report, _wait_ready, ctrl_c_as_in_a_terminal

    rng = random.Random(13)
    script = Path(__file__).parent / "fault_lightning.py"
    outcomes = []
    for i, signum in enumerate([signal.SIGTERM, signal.SIGINT]):
        out = tmp_path / f"try{i}"
        out.mkdir()
        process = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal)
        try:
            _wait_ready(process, out, limit_s=120)
            time.sleep(rng.uniform(0.0, 2.0))  # mostly inside a validation that waits on the 0.3 s device
            process.send_signal(signum)
            sent = time.monotonic()
            while not list(out.glob("carbonstep-*.json")) and time.monotonic() - sent < SIGNAL_BOUND_S:
                time.sleep(0.02)
            took_s = time.monotonic() - sent
            if signum == signal.SIGINT:  # Lightning shuts down by itself on Ctrl-C
                process.wait(timeout=60)  # its own teardown: not ours to bound
            ended_s = time.monotonic() - sent
        finally:
            process.kill()  # SIGTERM: Lightning's own handler lets training go on (its choice)
            _, err = process.communicate()
        assert took_s < SIGNAL_BOUND_S, err[-2000:]
        report = _check_signalled_report(out, steps_unwritten=1)  # a step may end between the read and the write
        outcomes.append(f"{signal.Signals(signum).name}: report after {took_s:.2f} s, ended after {ended_s:.2f} s, "
                        f"{report.status}, {report.energy_kwh * KWH:.0f}/{int((out / 'progress').read_text()) * 10} J")
    print("\nLightning: " + "; ".join(outcomes))
