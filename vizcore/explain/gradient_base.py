"""The gradient family's base: saliency, SmoothGrad, guided backprop and integrated gradients.

Every gradient method explains the target class's logit (the pre-softmax score, the "linear
head"), as tf-keras-vis recommends with ``ReplaceToLinear``: the softmax would mix in every
other class. Gradients come from a compiled ``(x, cls) -> (d logit_cls / dx, logits)`` with a
fixed input signature (:meth:`GradientMethod.grad_fn`, the one hook a variant overrides);
multi-sample methods feed it batches capped by the engine's memory budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from vizcore.explain.base import Attribution, Engine, Method, Param, Progress, normalize

#: The batch-size parameter of the multi-sample gradient methods.
BATCH = Param("batch_size", 32, "int", 1, 256,
              help="Images per pass; larger is faster up to memory limits.", advanced=True)


def abs_max_map(grads: np.ndarray) -> np.ndarray:
    """(H, W, C) gradients -> (H, W) map: max over channels of |g|, min-max normalised (as in
    Simonyan et al. 2013 and tf-keras-vis)."""
    return normalize(np.max(np.abs(grads), axis=-1))


def in_batches(n: int, batch_size: int, make: Callable[[int, int], np.ndarray],
               progress: Progress = None) -> Iterator[np.ndarray]:
    """Yield ``make(start, size)`` for consecutive chunks of ``n`` inputs, reporting the done
    fraction once the consumer comes back for the next chunk (so, after its passes ran)."""
    for i in range(0, n, batch_size):
        size = min(batch_size, n - i)
        yield make(i, size)
        if progress is not None:
            progress((i + size) / n)


def sum_gradients(fn, batches: Iterable[np.ndarray], target: int,
                 absolute: bool = False) -> tuple[np.ndarray, int]:
    """Sum over every input of the batches of d logit_target / dx (or of its absolute value),
    (H, W, C) float64, and the number of inputs.

    Args:
        fn: A compiled ``(x (B,H,W,C), cls) -> (gradient, logits)``.
        batches: Arrays (B, H, W, C), possibly generated lazily (memory stays at one batch).
        target: A resolved class index.
        absolute: Sum |gradient| instead of the gradient.
    """
    total, n = None, 0
    cls = np.int32(target)
    for batch in batches:
        g, _ = fn(batch, cls)
        g = g.numpy()
        s = (np.abs(g) if absolute else g).sum(axis=0, dtype=np.float64)
        total = s if total is None else total + s
        n += len(batch)
    return total, n


class GradientMethod(Method):
    """A method built from input gradients of the class logit.

    The default :meth:`run` is one gradient and its |g| max-over-channels map (saliency);
    guided backprop only swaps :meth:`grad_fn`; SmoothGrad and integrated gradients average
    gradients over many inputs with :meth:`gradient_sum` (batched, with progress and the
    memory cap).
    """

    family = "gradient"
    signed = True

    def grad_fn(self, engine: Engine):
        """Compiled ``(x (B,H,W,C), cls) -> (d logit_cls / dx, logits)``; ``cls = -1`` means
        each row's predicted class. The plain model's by default."""
        return engine.input_grad_fn()

    @staticmethod
    def resolve_target(engine: Engine, x: np.ndarray, target: int) -> int:
        """``target``, or the predicted class of ``x`` for -1 (one forward pass)."""
        return engine.predicted(x) if target < 0 else target

    def gradient(self, engine: Engine, x: np.ndarray, target: int) -> tuple[np.ndarray, int]:
        """The gradient (H, W, C) of one image and the resolved target (read off the same
        pass's logits for -1)."""
        g, logits = self.grad_fn(engine)(x[None], np.int32(target))
        tgt = int(np.argmax(logits.numpy()[0])) if target < 0 else target
        return g.numpy()[0], tgt

    def gradient_sum(self, engine: Engine, n: int, batch_size: int,
                     make: Callable[[int, int], np.ndarray], target: int,
                     progress: Progress = None, absolute: bool = False) -> np.ndarray:
        """Sum (H, W, C) float64 of the gradients of the ``n`` inputs ``make(start, size)``
        builds, in batches of ``batch_size`` capped by the engine's memory budget."""
        bs = engine.cap_batch(batch_size)
        total, _ = sum_gradients(self.grad_fn(engine), in_batches(n, bs, make, progress), target,
                                absolute)
        return total

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, **params) -> Attribution:
        """One gradient; heatmap = max over channels of |g|, signed map = the gradient."""
        g, tgt = self.gradient(engine, x, target)
        return Attribution(abs_max_map(g), g, tgt)
