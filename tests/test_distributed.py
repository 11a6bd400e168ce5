"""Data-parallel training (issue 13 §4): two gloo processes on the CPU, as torchrun would start them.

Each rank is a forked copy of this process with torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT), calling `train` in turn for several runs: forking skips a second import of torch per process, which
keeps the whole file to a few seconds. The torchrun command line itself is shown in the README.
"""
import multiprocessing
import os
import signal
import socket
import traceback

import pytest
import torch

from linformer_edu import distributed
from linformer_edu import train as T
from linformer_edu.checkpoint import read_checkpoint

TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness, it was the epoch of belief, it was the epoch of incredulity.\n") * 30
STEPS, WORLD, BATCH = 4, 2, 2   # 2 ranks x batch 2 = one process with batch 4

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not torch.distributed.is_available(),
                                reason="needs fork and torch.distributed (gloo)")


def tiny(text_file, **changes):
    base = dict(corpus=str(text_file), dim=16, depth=1, heads=2, seq_len=16, k=4, batch_size=BATCH,
                max_steps=STEPS, warmup_steps=2, eval_interval=2, eval_iters=2, progress=False, device="cpu")
    return T.TrainConfig(**{**base, **changes})


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rank_main(rank, jobs, results):
    """One rank: run `jobs` ((config, resume, sigterm_at_step, port) each) in turn and report what each returned."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1")
    torch.set_num_threads(1)
    real_step, reports = T.train_step, []
    try:
        for config, resume, sigterm_at, port in jobs:
            os.environ["MASTER_PORT"] = str(port)   # a process group per run, each on a port of its own
            def train_step(run, lr, sigterm_at=sigterm_at):   # SIGTERM to this rank alone, inside that step
                if rank == 1 and run.step == sigterm_at:
                    signal.raise_signal(signal.SIGTERM)
                return real_step(run, lr)
            T.train_step = train_step
            result = T.train(config, resume=resume)
            reports.append((result.stopped, result.step, result.history["loss"]))
        results.put((rank, reports))
    except BaseException:   # noqa: BLE001 - reported to the test
        results.put((rank, traceback.format_exc()))


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Two ranks train: 'straight' for STEPS steps; 'halves' until rank 1 alone gets SIGTERM in step STEPS // 2 - 1,
    then resumed to STEPS. Returns (text file, folder, {rank: [(stopped, step, losses) per run]})."""
    folder = tmp_path_factory.mktemp("ddp")
    text_file = folder / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    halves = tiny(text_file, out_dir=str(folder / "halves"))
    jobs = [(tiny(text_file, out_dir=str(folder / "straight")), False, None, free_port()),
            (halves, False, STEPS // 2 - 1, free_port()),   # stopped by SIGTERM (same max_steps: same lr schedule)
            (halves, True, None, free_port())]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=rank_main, args=(rank, jobs, results)) for rank in range(WORLD)]
    for process in processes:
        process.start()
    reports = dict(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    for rank, report in reports.items():
        assert isinstance(report, list), f"rank {rank} failed:\n{report}"
    return text_file, folder, reports


def test_two_ranks_train_as_one_process_with_their_global_batch(ranks):
    text_file, folder, reports = ranks
    alone = T.train(tiny(text_file, batch_size=WORLD * BATCH))
    torch.testing.assert_close(torch.tensor(reports[0][0][2]), torch.tensor(alone.history["loss"]))
    assert reports[0][0][2] == reports[1][0][2]                       # every rank logs the same, averaged loss
    weights = read_checkpoint(folder / "straight")["model"]           # written by rank 0
    for name, weight in alone.model.state_dict().items():
        torch.testing.assert_close(weights[name], weight, msg=name)
    assert sorted(p.name for p in (folder / "straight").iterdir()) == ["ckpt.pt", "metrics.json"]   # one writer


def test_a_sigterm_to_one_rank_stops_both_at_the_same_step(ranks):
    _, _, reports = ranks
    assert [reports[rank][1][:2] for rank in range(WORLD)] == [("terminated", STEPS // 2)] * WORLD


def test_resume_under_two_ranks_is_exact(ranks):
    _, folder, reports = ranks
    straight, resumed = read_checkpoint(folder / "straight"), read_checkpoint(folder / "halves")
    assert resumed["step"] == STEPS and reports[0][2][:2] == ("steps", STEPS)
    assert resumed["history"]["loss"] == straight["history"]["loss"]
    for name, weight in straight["model"].items():
        assert torch.equal(resumed["model"][name], weight), name


def test_without_torchrun_a_process_is_rank_0_of_1(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.launched() and distributed.rank() == 0
    world = distributed.setup(torch.device("cpu"))
    assert world == distributed.World(0, 1, torch.device("cpu")) and world.is_main
    assert distributed.agree(world, 1.5, None) == (1.5, None)
    assert distributed.rank_slice(distributed.World(1, 2), 1, 3) == slice(9, 12)   # micro-step 1, rank 1


def test_mps_cannot_train_data_parallel(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="^device: 'mps' cannot train data-parallel"):
        distributed.setup(torch.device("mps"))
