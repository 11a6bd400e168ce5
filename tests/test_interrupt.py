"""Ctrl-C and SIGTERM at any point of a training step (issue 12): the run stops between steps, and resuming it
gives, bit for bit, the weights and losses of a run that was never stopped.

The stop is set off from inside the step — while the batch is drawn, in the forward pass, in the backward pass,
just before the optimizer step, between two parameters' updates inside it, just after it — either as the signal
itself (`signal.raise_signal`: what Ctrl-C, Jupyter's "interrupt kernel" and `kill` do) or as a KeyboardInterrupt
raised right there (what code does that raises it itself: train() cannot make that wait). Tiny models on CPU.
"""
import dataclasses
import signal
import sys
import threading

import pytest
import torch

from linformer_edu import train as T
from linformer_edu.checkpoint import read_checkpoint

TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness, it was the epoch of belief, it was the epoch of incredulity.\n") * 30
STEPS, EVERY, AT = 5, 2, 3   # steps; evaluation (and checkpoint) interval; the step (0-based) that is cut
POINTS = ("batch", "forward", "backward", "before update", "in update", "after update")


class SigtermNotHandled(Exception):
    """What SIGTERM raises in these tests when train() did not take it over: a failure, not a killed pytest."""


@pytest.fixture(autouse=True)
def sigterm_guard():
    def guard(signum, frame):
        raise SigtermNotHandled
    previous = signal.signal(signal.SIGTERM, guard)
    yield guard
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture(autouse=True)
def sigint_raises():
    """SIGINT raises KeyboardInterrupt, as under a terminal. A job a shell starts in the background (`make test &`,
    nohup) inherits SIGINT ignored, and Python then leaves it ignored; these tests send SIGINT as Ctrl-C would."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def tiny(text_file, **changes):
    base = dict(corpus=str(text_file), dim=16, depth=2, heads=2, seq_len=16, k=4, batch_size=4, max_steps=STEPS,
                warmup_steps=2, eval_interval=EVERY, eval_iters=1, dropout=0.1, progress=False, device="cpu")
    return T.TrainConfig(**{**base, **changes})   # dropout: the random states must resume exactly too


@pytest.fixture(scope="module")
def straight(text_file):
    """The run that is never stopped."""
    return T.train(tiny(text_file))


def train_catching(config):
    """train(config)'s result, or the KeyboardInterrupt it raised (returned: escaping a test, it would stop pytest)."""
    try:
        return T.train(config)
    except KeyboardInterrupt as interrupt:
        return interrupt
    finally:
        sys.setprofile(None)   # the "in update" counter, if the update was cut before it removed itself


def assert_resumes_exactly(config, straight):
    resumed = T.train(config, resume=True)
    assert resumed.step == STEPS and resumed.stopped == "steps"
    for name, weight in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], weight), name
    assert resumed.history["loss"] == straight.history["loss"]
    for name in ("step", "val_loss", "train_loss"):   # evaluated on the same windows as if never stopped
        assert [e[name] for e in resumed.history["evals"]] == [e[name] for e in straight.history["evals"]]


class StopInside:
    """Sets off `action` ("sigint", "sigterm": the signal; "raise": a KeyboardInterrupt) once, at `point` of step
    AT, through hooks on the model and optimizer train() builds. `fire(point)` may be called by more than one hook;
    only the one named `point` acts (and "in update" counts in-place tensor operations inside optimizer.step)."""

    def __init__(self, monkeypatch, point, action, when=AT):
        self.point, self.action, self.when, self.step, self.fired = point, action, when, None, False
        self.inplace_ops = 0
        real_step, real_batch, real_build, real_optimizer = T.train_step, T.get_batch, T.build_model, T.make_optimizer

        def train_step(run, lr):
            self.step = run.step
            try:
                return real_step(run, lr)
            finally:
                self.step = None

        def batch(*args, **kwargs):
            drawn = real_batch(*args, **kwargs)
            self.fire("batch")
            return drawn

        def build_model(*args):
            model = real_build(*args)
            model.linformer.net.layers[1][0].register_forward_pre_hook(lambda *_: self.fire("forward"))
            model.linformer.net.layers[0][1].fn.w1.weight.register_hook(lambda grad: self.fire("backward"))
            return model

        def make_optimizer(*args):
            optimizer = real_optimizer(*args)
            optimizer.register_step_pre_hook(lambda *_: self.before_update())
            optimizer.register_step_post_hook(lambda *_: self.after_update())
            return optimizer

        for name, patch in (("train_step", train_step), ("get_batch", batch), ("build_model", build_model),
                            ("make_optimizer", make_optimizer)):
            monkeypatch.setattr(T, name, patch)

    def before_update(self):
        self.fire("before update")
        if self.point == "in update" and self.step == self.when:
            sys.setprofile(self.count_inplace_ops)

    def count_inplace_ops(self, frame, event, arg):
        if event == "c_call" and getattr(arg, "__name__", "").endswith("_"):
            self.inplace_ops += 1
            if self.inplace_ops == 9:   # AdamW makes 6 per parameter: the 2nd parameter is half-way through
                sys.setprofile(None)
                self.fire("in update")

    def after_update(self):
        sys.setprofile(None)
        self.fire("after update")

    def fire(self, point):
        if point != self.point or self.step != self.when or self.fired:   # step: set only inside train_step
            return
        self.fired = True
        if self.action == "raise":
            raise KeyboardInterrupt
        signal.raise_signal(signal.SIGINT if self.action == "sigint" else signal.SIGTERM)


# A KeyboardInterrupt raised before the update is test_train.py's test_ctrl_c_in_the_middle_of_a_step_...
CASES = [(point, "sigint") for point in POINTS] + [("in update", "raise"), ("after update", "raise"),
                                                   ("in update", "sigterm")]


@pytest.mark.parametrize("point, action", CASES)
def test_a_stop_anywhere_in_a_step_resumes_exactly(text_file, tmp_path, monkeypatch, straight, point, action):
    config = tiny(text_file, out_dir=str(tmp_path / "run"))
    stop = StopInside(monkeypatch, point, action)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    result = train_catching(config)
    assert stop.fired
    if action == "raise":   # inside the update the weights are half new: nothing whole to save, so the
        assert isinstance(result, KeyboardInterrupt)   # interrupt goes on, and the last checkpoint is kept
        saved = EVERY * (AT // EVERY)
    else:                   # a signal waits: the step finishes, then the run is saved
        saved = AT + 1
        assert result.stopped == ("terminated" if action == "sigterm" else "interrupted")
        assert result.step == saved
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers   # put back
    assert read_checkpoint(tmp_path / "run")["step"] == saved
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["ckpt.pt", "metrics.json"]   # no temp files
    monkeypatch.undo()
    assert_resumes_exactly(config, straight)


@pytest.mark.parametrize("second, saved", [("backward", AT), ("in update", AT + 1)])
def test_a_second_ctrl_c_stops_at_once_except_inside_the_update(text_file, tmp_path, monkeypatch, straight,
                                                                  second, saved):
    """The first Ctrl-C waits for the step; a second one drops it — unless it lands in the weight update, which
    always finishes. Either way the run is saved whole and resumes exactly."""
    config = tiny(text_file, out_dir=str(tmp_path / "run"))
    first = StopInside(monkeypatch, "batch", "sigint")
    again = StopInside(monkeypatch, second, "sigint")   # wraps the first one's hooks: both act
    result = train_catching(config)
    assert first.fired and again.fired
    assert result.stopped == "interrupted" and result.step == saved
    monkeypatch.undo()
    assert_resumes_exactly(config, straight)


def test_handlers_come_back_after_an_error(text_file, monkeypatch):
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(T, "evaluate", lambda run: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        T.train(tiny(text_file))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_ctrl_c_while_the_text_loads_stops_at_once(text_file, monkeypatch):
    """Before the first step there is nothing to save: the signal raises where it lands, as Python's own does."""
    def load(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return TEXT
    monkeypatch.setattr(T, "load_corpus", load)
    with pytest.raises(KeyboardInterrupt):
        T.train(tiny(text_file))


def test_train_runs_outside_the_main_thread(text_file):
    """Python delivers signals to the main thread only, and refuses handlers from other threads: none is set."""
    results, errors = [], []
    thread = threading.Thread(target=lambda: _collect(results, errors, tiny(text_file, max_steps=1)))
    thread.start()
    thread.join()
    assert errors == [] and results[0].stopped == "steps"


def _collect(results, errors, config):
    try:
        results.append(T.train(config))
    except Exception as error:   # noqa: BLE001 - reported by the test
        errors.append(error)


def test_the_command_line_exits_143_on_sigterm_and_130_on_ctrl_c(text_file, tmp_path, monkeypatch, capsys):
    args = ["--text", str(text_file), "--steps", str(STEPS), "--minutes", "0", "--seq-len", "16", "--dim", "16",
            "--depth", "2", "--heads", "2", "--k", "4", "--batch-size", "4", "--eval-interval", "2",
            "--eval-iters", "1", "--device", "cpu", "--no-progress"]
    for action, status in (("sigterm", 143), ("sigint", 130)):
        out = tmp_path / action
        StopInside(monkeypatch, "in update", action)
        try:
            assert T.main(args + ["--out", str(out)]) == status
        finally:
            sys.setprofile(None)
        monkeypatch.undo()
        printed = capsys.readouterr().out
        assert f"{'Terminated' if action == 'sigterm' else 'Interrupted'} at step {AT + 1}; saved" in printed
        assert read_checkpoint(out)["step"] == AT + 1
        assert sorted(p.name for p in out.iterdir()) == ["ckpt.pt", "metrics.json"]


def test_jupyters_interrupt_stops_training_between_steps_and_returns(text_file, tmp_path):
    """"Interrupt kernel" sends SIGINT to the kernel, whose main thread runs the cell: train() returns its result,
    saved at a step boundary, and the cell ends without an error."""
    jupyter_client = pytest.importorskip("jupyter_client")
    manager, client = jupyter_client.manager.start_new_kernel(kernel_name="python3")
    try:
        config = tiny(text_file, max_steps=100_000, out_dir=str(tmp_path / "run"))
        code = ("from linformer_edu import train as T\n"
                f"config = T.TrainConfig(**{dataclasses.asdict(config)!r})\n"
                "result = T.train(config, callback=lambda r: r.step == 4 and print('training', flush=True))\n"
                "print(result.stopped, result.step, T.read_checkpoint(config.out_dir)['step'])")
        printed = []

        def output(message):
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])
                if "training" in message["content"]["text"] and len(printed) == 1:
                    manager.interrupt_kernel()

        reply = client.execute_interactive(code, output_hook=output, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        stopped, step, saved = "".join(printed).split("\n")[-2].split(" ")
        assert stopped == "interrupted" and int(step) == int(saved) >= 4
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
