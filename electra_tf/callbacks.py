"""Keras callbacks of training runs: checkpoints, console and TensorBoard logs (fine-tuning too), step timing,
NaN guard."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf
from absl import logging

from electra_tf.errors import UserError
from electra_tf.model.metrics import (
    AUC,
    DISC_LOSS,
    LEARNING_RATE,
    LOGGED_METRICS,
    LOSS,
    MLM_ACCURACY,
    MLM_LOSS,
)


class StepCallback(keras.callbacks.Callback):
    """Base for callbacks that act every ``every`` optimizer steps (robust to steps_per_execution)."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self._last_bucket: int | None = None

    def current_step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def due(self, step: int) -> bool:
        bucket = step // self.every
        if self._last_bucket is None:
            self._last_bucket = bucket
            return False
        if bucket != self._last_bucket:
            self._last_bucket = bucket
            return True
        return False

    def on_train_begin(self, logs=None) -> None:
        self._last_bucket = self.current_step() // self.every


class CheckpointSaver(StepCallback):
    """Saves weights, optimizer slots, step and loss scale every ``every`` steps and at the end.

    ``tf.train.CheckpointManager`` writes each checkpoint's files first and only then records it in
    its state file, so a run killed mid-write resumes from the previous complete checkpoint.
    """

    def __init__(self, manager: tf.train.CheckpointManager | None, every: int) -> None:
        super().__init__(every)
        self.manager = manager
        self._saved_step: int | None = None

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        self._saved_step = self.current_step() if self.manager and self.manager.latest_checkpoint else None

    def save(self, step: int) -> None:
        """Save ``ckpt-{step}``; a failed write (a full disk) stops the run with one line that says why."""
        if self.manager is None:
            return
        try:
            path = self.manager.save(checkpoint_number=step)
        # Raised inside fit, an OutOfRangeError ("File too large") would be taken by Keras for the end of
        # the input data, so every write error is turned into a UserError here.
        except (tf.errors.OpError, OSError) as error:
            resume = self.manager.latest_checkpoint or "step 0 (no checkpoint was completed)"
            raise UserError(
                f"cannot write checkpoint ckpt-{step} in {self.manager.directory}: {_os_reason(error)}. Free disk "
                f"space there and re-run the same command: it resumes from {resume} and removes the partial files."
            ) from None
        self._saved_step = step
        logging.info("Saved checkpoint %s.", path)

    def on_train_batch_end(self, batch, logs=None) -> None:
        step = self.current_step()
        if self.due(step):
            self.save(step)

    def on_train_end(self, logs=None) -> None:
        step = self.current_step()
        if step != self._saved_step:
            self.save(step)


def pretraining_summary(values: dict[str, float]) -> str:
    """The console line's metrics for pretraining: total loss, both networks' losses and scores, lr."""
    value = {name: values.get(name, math.nan) for name in (LOSS, MLM_LOSS, MLM_ACCURACY, DISC_LOSS, AUC, LEARNING_RATE)}
    return (
        f"loss {value[LOSS]:.4f}  mlm {value[MLM_LOSS]:.4f} (acc {value[MLM_ACCURACY]:.3f})  "
        f"disc {value[DISC_LOSS]:.4f} (auc {value[AUC]:.3f})  lr {value[LEARNING_RATE]:.3g}"
    )


class TrainingLogger(StepCallback):
    """Every ``every`` steps: the metrics of the window to the console and TensorBoard, then a reset.

    Logs the step's ``metric_names`` (the console line shows what ``summary`` makes of them) and
    adds throughput (examples/s, and tokens/s when ``tokens_per_example`` is known), achieved model
    TFLOP/s and MFU against ``peak_flops`` (when ``flops_per_example`` is known), and the time left.
    ``sample_text`` (optional) renders a replaced-token-detection example as markdown for a
    TensorBoard text summary. Pretraining and fine-tuning both log through it.
    """

    def __init__(
        self,
        every: int,
        writer: tf.summary.SummaryWriter | None,
        total_steps: int,
        examples_per_step: int,
        tokens_per_example: int | None,
        flops_per_example: int | None,
        peak_flops: float | None,
        sample_text: Callable[[], str] | None = None,
        metric_names: Sequence[str] = LOGGED_METRICS,
        summary: Callable[[dict[str, float]], str] = pretraining_summary,
    ) -> None:
        super().__init__(every)
        self.writer = writer
        self.total_steps = total_steps
        self.examples_per_step = examples_per_step
        self.tokens_per_example = tokens_per_example
        self.flops_per_example = flops_per_example
        self.peak_flops = peak_flops
        self.sample_text = sample_text
        self.metric_names = tuple(metric_names)
        self.summary = summary
        self._window_start_time = 0.0
        self._window_start_step = 0

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        self._window_start_time = time.perf_counter()
        self._window_start_step = self.current_step()

    def on_train_batch_end(self, batch, logs=None) -> None:
        step = self.current_step()
        if not self.due(step) and step != self.total_steps:
            return
        now = time.perf_counter()
        steps = step - self._window_start_step
        seconds = max(now - self._window_start_time, 1e-9)
        values = {name: float(logs[name]) for name in self.metric_names if logs and name in logs}
        examples_per_second = steps * self.examples_per_step / seconds
        values["examples_per_second"] = examples_per_second
        if self.tokens_per_example:
            values["tokens_per_second"] = examples_per_second * self.tokens_per_example
        if self.flops_per_example:
            values["model_tflops_per_second"] = examples_per_second * self.flops_per_example / 1e12
            if self.peak_flops:
                values["mfu"] = examples_per_second * self.flops_per_example / self.peak_flops
        eta = (self.total_steps - step) * seconds / max(steps, 1)
        logging.info(
            "step %d/%d  %s  %.1f ex/s%s  ETA %s",
            step,
            self.total_steps,
            self.summary(values),
            examples_per_second,
            f"  MFU {values['mfu']:.1%}" if "mfu" in values else "",
            _duration(eta),
        )
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for name, value in values.items():
                    tf.summary.scalar(name, value)
                if self.sample_text is not None:
                    tf.summary.text("replaced_token_detection", self.sample_text())
            self.writer.flush()
        self.model.reset_metrics()
        self._window_start_time, self._window_start_step = time.perf_counter(), step

    def leave_out(self, seconds: float) -> None:
        """Leave ``seconds`` spent on other work (an evaluation) out of the window's throughput and ETA."""
        self._window_start_time += seconds


class PeriodicEvaluation(StepCallback):
    """Runs ``evaluate`` (an :class:`electra_tf.training.Evaluator`) every ``every`` steps while training,
    and hands the seconds it took to ``took`` (the logger's :meth:`TrainingLogger.leave_out`)."""

    def __init__(self, every: int, evaluate: Callable[[], dict], took: Callable[[float], None]) -> None:
        super().__init__(every)
        self.evaluate = evaluate
        self.took = took

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self.due(self.current_step()):
            start = time.perf_counter()
            self.evaluate()
            self.took(time.perf_counter() - start)


class TrainingStepTimer(keras.callbacks.Callback):
    """Adds up, per epoch of ``fit``, the time from each training batch's start to its end.

    That is the compiled step, taking its (prefetched) batch off the input pipeline included, and
    nothing else: callbacks at the end of an epoch (a dev evaluation) and between steps come after
    this one's ``on_train_batch_end`` when it is the first callback. ``clock`` returns seconds (a
    fake one in the tests).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        self.clock = clock
        self.seconds_by_epoch: list[float] = []
        self._batch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.seconds_by_epoch.append(0.0)

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        self._batch_start = self.clock()

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.seconds_by_epoch[-1] += self.clock() - self._batch_start


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops with a clear message when the loss becomes NaN or infinite (the weights would be ruined)."""

    def __init__(self, precision: str) -> None:
        super().__init__()
        self.precision = precision

    def on_train_batch_end(self, batch, logs=None) -> None:
        loss = float(logs.get(LOSS, 0.0)) if logs else 0.0
        if not math.isfinite(loss):
            hint = (
                " Under mixed_float16 try mixed_bfloat16 (no overflow) or float32."
                if self.precision == "mixed_float16"
                else " Lower --learning-rate or raise --num-warmup-steps."
            )
            raise UserError(
                f"the training loss became {loss} at step {int(self.model.optimizer.iterations.numpy())}; the last "
                f"checkpoint is intact.{hint}"
            )


def _os_reason(error: Exception) -> str:
    """The operating system's reason in a failed write's message ("No space left on device")."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    message = re.sub(r"^\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]\s*$", "", error.message.strip())
    return message.rsplit("; ", 1)[-1]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
