"""Fooling the model: FGSM, targeted PGD, an adversarial patch and flip rates.

* FGSM: Goodfellow, Shlens, Szegedy (2015), "Explaining and Harnessing Adversarial Examples",
  arXiv:1412.6572. One step of size epsilon along the sign of the loss gradient.
* PGD: Madry, Makelov, Schmidt, Tsipras, Vladu (2018), "Towards Deep Learning Models Resistant to
  Adversarial Attacks", arXiv:1706.06083. Repeated signed-gradient steps, each projected back
  into the epsilon ball (L-infinity) around the image; here also *targeted*: the steps lower the
  loss of a chosen class instead of raising the loss of the true one.
* Adversarial patch: Brown, Mane, Roy, Abadi, Gilmer (2017), "Adversarial Patch",
  arXiv:1712.09665. A small square, unbounded in strength but limited in size, optimised over
  many images so that pasting it makes the model answer a chosen class. Simplified: the patch
  stays at one chosen place (Brown et al. also randomise position, scale and rotation).

Units: ``epsilon`` and step sizes are fractions of the full pixel range (``8 / 255`` = eight grey
levels), converted per channel into the model's input range; every adversarial image is clipped
to the valid pixel range of the model's scaling (0..1, -1..1, caffe's mean-subtracted BGR ...),
so it is always an image one could save as 8-bit pixels (up to rounding).

Losses use the logits of the model's linear head (the pre-softmax scores, see
:meth:`vizcore.engine.Engine.head`): cross-entropy from logits is numerically stable even
where the softmax saturates. All loops run in compiled ``tf.function``\\ s with fixed input
signatures and class indices passed as tensors, batched; the shared model is never changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vizcore.engine import Engine, cap_batch, get_engine

Progress = Callable[[float], None] | None


# --------------------------------------------------------------------------- units


def bounds(info) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest valid model-range value per channel, (C,) float32 each."""
    return get_engine(info).input_bounds()


def to_model_units(info, amount: float) -> np.ndarray:
    """A fraction of the pixel range (``8 / 255``) as a per-channel amount in model range."""
    lo, hi = bounds(info)
    return (float(amount) * (hi - lo)).astype(np.float32)


def _as_batch(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.shape == tuple(shape):
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != tuple(shape):
        raise ValueError(f"expected images of shape {tuple(shape)} or (N, *{tuple(shape)}), "
                         f"got {x.shape}")
    return x


def _labels(y, n: int, k: int) -> np.ndarray:
    y = np.broadcast_to(np.asarray(y, np.int32), (n,)).copy()
    if (y < 0).any() or (y >= k).any():
        raise ValueError(f"class indices must be in 0..{k - 1}, got {sorted(set(y.tolist()))}")
    return y


# --------------------------------------------------------------------------- compiled pieces


def _ce(labels, logits):
    import tensorflow as tf

    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def _pgd_fn(engine: Engine):
    """Compiled ``(x0, x, y, direction, eps, alpha, n) -> (x_adv, probs)``: ``n`` signed-gradient
    steps of size ``alpha`` on the cross-entropy of class ``y`` (``direction`` +1 raises it,
    -1 lowers it), each projected onto the eps ball around ``x0`` intersected with the valid
    pixel box. Per row: n forward + n backward passes, then one forward pass."""

    def build():
        import tensorflow as tf

        tap, to_logits = engine.trunk()
        lo, hi = (tf.constant(b) for b in engine.input_bounds())
        c = engine.input_shape[-1]
        vec = tf.TensorSpec([c], tf.float32)

        @tf.function(
            autograph=False,
            input_signature=[
                engine.spec_batch(),
                engine.spec_batch(),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([], tf.float32),
                vec,
                vec,
                tf.TensorSpec([], tf.int32),
            ],
        )
        def run(x0, x, y, direction, eps, alpha, n):
            low = tf.maximum(x0 - eps, lo)
            high = tf.minimum(x0 + eps, hi)

            def body(i, xa):
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(xa)
                    loss = tf.reduce_sum(_ce(y, to_logits(tap(xa, training=False))))
                g = tape.gradient(loss, xa)
                xa = tf.clip_by_value(xa + direction * alpha * tf.sign(g), low, high)
                return i + 1, xa

            _, xa = tf.while_loop(lambda i, _: i < n, body, [tf.constant(0), x])
            probs = tf.nn.softmax(to_logits(tap(xa, training=False)), axis=-1)
            return xa, probs

        return run

    return engine.cached("adv_pgd", build)


def _loss_fn(engine: Engine):
    """Compiled ``(x (B,H,W,C), y (B,)) -> (cross-entropy (B,), probs (B,K))``."""

    def build():
        import tensorflow as tf

        logits_fn = engine.logits_fn()

        @tf.function(
            autograph=False,
            input_signature=[engine.spec_batch(), tf.TensorSpec([None], tf.int32)],
        )
        def run(x, y):
            logits = logits_fn(x)
            return _ce(y, logits), tf.nn.softmax(logits, axis=-1)

        return run

    return engine.cached("adv_loss", build)


# --------------------------------------------------------------------------- results


@dataclass
class AttackResult:
    """Adversarial versions of a batch of images.

    Attributes:
        x: (N, H, W, C) the clean images, model range.
        x_adv: (N, H, W, C) the adversarial images, model range, valid pixels.
        probs_before: (N, K) probabilities of the clean images.
        probs_after: (N, K) probabilities of the adversarial images.
        labels: (N,) the class whose loss the attack raised (untargeted: the true label or the
            clean prediction) or lowered (targeted: the target).
        targeted: True for a targeted attack.
        attack: ``"fgsm"`` or ``"pgd"``.
        epsilon: Radius of the L-infinity ball, as a fraction of the pixel range.
        steps: Gradient steps taken.
        step_size: Step size, fraction of the pixel range.
        seconds: Wall time.
    """

    x: np.ndarray
    x_adv: np.ndarray
    probs_before: np.ndarray
    probs_after: np.ndarray
    labels: np.ndarray
    targeted: bool
    attack: str
    epsilon: float
    steps: int
    step_size: float
    seconds: float = 0.0

    @property
    def pred_before(self) -> np.ndarray:
        return np.argmax(self.probs_before, axis=-1)

    @property
    def pred_after(self) -> np.ndarray:
        return np.argmax(self.probs_after, axis=-1)

    @property
    def delta(self) -> np.ndarray:
        """x_adv - x, model range."""
        return self.x_adv - self.x

    @property
    def success(self) -> np.ndarray:
        """(N,) bool: targeted: the prediction is the target; untargeted: it is not the label."""
        if self.targeted:
            return self.pred_after == self.labels
        return self.pred_after != self.labels

    @property
    def success_rate(self) -> float:
        return float(self.success.mean()) if len(self.labels) else 0.0

    @property
    def flipped(self) -> np.ndarray:
        """(N,) bool: the prediction changed."""
        return self.pred_after != self.pred_before


def cross_entropy(info, x: np.ndarray, labels, batch_size: int = 256) -> np.ndarray:
    """Per-image cross-entropy (N,) of ``labels`` from the model's logits; batched."""
    engine = get_engine(info)
    xs = _as_batch(x, engine.input_shape)
    y = _labels(labels, len(xs), engine.num_classes)
    bs = cap_batch(engine, batch_size)
    fn = _loss_fn(engine)
    return np.concatenate([fn(xs[i : i + bs], y[i : i + bs])[0].numpy()
                           for i in range(0, len(xs), bs)])


def _run_pgd(info, x, labels, targeted: bool, epsilon: float, steps: int, step_size: float,
             random_start: bool, seed: int, batch_size: int, progress: Progress,
             attack: str) -> AttackResult:
    t0 = time.perf_counter()
    engine = get_engine(info)
    xs = _as_batch(x, engine.input_shape)
    if epsilon < 0 or step_size < 0 or steps < 0:
        raise ValueError("epsilon, step size and steps must not be negative")
    n, k = len(xs), engine.num_classes
    loss_fn = _loss_fn(engine)
    bs = cap_batch(engine, batch_size)
    probs0 = np.concatenate([loss_fn(xs[i : i + bs], np.zeros(len(xs[i : i + bs]), np.int32))[1]
                             .numpy() for i in range(0, n, bs)]) if n else np.zeros((0, k))
    y = np.argmax(probs0, axis=-1).astype(np.int32) if labels is None else _labels(labels, n, k)
    eps = to_model_units(info, epsilon)
    alpha = to_model_units(info, step_size)
    lo, hi = engine.input_bounds()
    start = xs
    if random_start and epsilon > 0:
        rng = np.random.default_rng(seed)
        start = np.clip(xs + rng.uniform(-1, 1, xs.shape).astype(np.float32) * eps, lo, hi)
    run = _pgd_fn(engine)
    direction = np.float32(-1.0 if targeted else 1.0)
    adv, probs1 = np.empty_like(xs), np.empty((n, k), np.float32)
    # report progress every few steps on small jobs, every batch on large ones
    chunk = steps if n > bs or progress is None else max(1, steps // 10)
    for i in range(0, n, bs):
        sl = slice(i, i + bs)
        cur = start[sl]
        done = 0
        while True:
            m = min(chunk, steps - done)
            cur_t, p = run(xs[sl], cur, y[sl], direction, eps, alpha, np.int32(m))
            cur, done = cur_t.numpy(), done + m
            if progress is not None:
                progress(min(1.0, (i + len(cur) * done / max(1, steps)) / n))
            if done >= steps:
                break
        adv[sl], probs1[sl] = cur, p.numpy()
    return AttackResult(xs, adv, probs0, probs1, y, targeted, attack, float(epsilon), int(steps),
                        float(step_size), time.perf_counter() - t0)


def fgsm(info, x: np.ndarray, epsilon: float = 8 / 255, labels=None, batch_size: int = 256,
         progress: Progress = None) -> AttackResult:
    """Fast gradient sign method (Goodfellow, Shlens, Szegedy 2015, arXiv:1412.6572).

    ``x_adv = clip(x + epsilon * sign(d loss(x, label) / dx))`` to the valid pixel range.

    Args:
        info: The ModelInfo.
        x: One image (H, W, C) or a batch (N, H, W, C), model range.
        epsilon: Step, as a fraction of the pixel range (``8 / 255`` = eight grey levels).
        labels: Class(es) whose loss to raise; None = each image's predicted class.
        batch_size: Images per pass (capped at 32 images of 224x224x3).
        progress: Optional callback receiving the completed fraction.

    Cost: per image 2 forward passes and 1 backward pass, batched.
    """
    return _run_pgd(info, x, labels, False, epsilon, 1, epsilon, False, 0, batch_size, progress,
                    "fgsm")


def pgd(info, x: np.ndarray, epsilon: float = 8 / 255, steps: int = 40,
        step_size: float | None = None, target=None, labels=None, random_start: bool = False,
        seed: int = 0, batch_size: int = 256, progress: Progress = None) -> AttackResult:
    """Projected gradient descent in an L-infinity ball (Madry et al. 2018, arXiv:1706.06083).

    Untargeted (``target`` None) it raises the loss of ``labels`` (default: the predicted
    class); targeted it lowers the loss of ``target``, pushing the prediction towards that
    class. Each step moves every pixel by ``step_size`` along the gradient's sign, then projects
    into ``[x - epsilon, x + epsilon]`` and the valid pixel range.

    Args:
        info: The ModelInfo.
        x: One image (H, W, C) or a batch (N, H, W, C), model range.
        epsilon: Radius of the ball, fraction of the pixel range.
        steps: Number of steps (Madry et al.: 40 on MNIST).
        step_size: Fraction of the pixel range per step; None = ``2.5 * epsilon / steps``
            (Madry et al.'s rule of thumb, so the walk can cross the ball).
        target: Class index (or one per image) for a targeted attack; None = untargeted.
        labels: For untargeted attacks: the classes whose loss to raise.
        random_start: Start from a uniformly random point of the ball (Madry et al.).
        seed: Seed of the random start.
        batch_size: Images per pass (capped at 32 images of 224x224x3).
        progress: Optional callback receiving the completed fraction.

    Cost: per image ``steps`` forward + backward passes and 2 forward passes, batched.
    """
    if step_size is None:
        step_size = 2.5 * epsilon / max(1, steps)
    targeted = target is not None
    return _run_pgd(info, x, target if targeted else labels, targeted, epsilon, int(steps),
                    float(step_size), random_start, seed, batch_size, progress, "pgd")


def grey_levels(info, delta: np.ndarray) -> tuple[float, float]:
    """Largest and mean absolute change of a perturbation (.., C) in grey levels (1/255 of the
    pixel range)."""
    d = np.abs(np.asarray(delta, np.float32)) / to_model_units(info, 1 / 255)
    return (float(d.max()), float(d.mean())) if d.size else (0.0, 0.0)


def amplify(delta: np.ndarray) -> np.ndarray:
    """A perturbation (H, W, C) scaled for display: uint8 with 128 = no change and the largest
    |change| at 0 / 255 (the amplification factor is ``127 / max|delta|``)."""
    d = np.asarray(delta, np.float32)
    m = float(np.abs(d).max())
    out = 128.0 + (127.0 * d / m if m > 0 else 0.0)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- adversarial patch


def _patch_fns(engine: Engine):
    """Compiled ``step(patch, imgs, cls, origin, alpha) -> (patch, loss, success)`` (one
    signed-gradient step on the mean cross-entropy of ``cls`` over the batch) and
    ``apply(patch, imgs, origin, cls) -> (probs of cls, predicted class)``."""

    def build():
        import tensorflow as tf

        tap, to_logits = engine.trunk()
        lo, hi = (tf.constant(b) for b in engine.input_bounds())
        h, w, c = engine.input_shape

        def paste(patch, imgs, origin):
            s = tf.shape(patch)
            pads = [[origin[0], h - origin[0] - s[0]], [origin[1], w - origin[1] - s[1]], [0, 0]]
            full = tf.pad(patch, pads)
            mask = tf.pad(tf.ones([s[0], s[1], 1]), pads)
            return imgs * (1.0 - mask) + full[None] * mask

        patch_spec = tf.TensorSpec([None, None, c], tf.float32)

        @tf.function(
            autograph=False,
            input_signature=[
                patch_spec,
                engine.spec_batch(),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([2], tf.int32),
                tf.TensorSpec([c], tf.float32),
            ],
        )
        def step(patch, imgs, cls, origin, alpha):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(patch)
                logits = to_logits(tap(paste(patch, imgs, origin), training=False))
                y = tf.fill(tf.shape(logits)[:1], cls)
                loss = tf.reduce_mean(_ce(y, logits))
            g = tape.gradient(loss, patch)
            patch = tf.clip_by_value(patch - alpha * tf.sign(g), lo, hi)
            hit = tf.reduce_mean(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == cls,
                                         tf.float32))
            return patch, loss, hit

        @tf.function(
            autograph=False,
            input_signature=[patch_spec, engine.spec_batch(), tf.TensorSpec([2], tf.int32)],
        )
        def apply(patch, imgs, origin):
            xs = paste(patch, imgs, origin)
            return tf.nn.softmax(to_logits(tap(xs, training=False)), axis=-1), xs

        return step, apply

    return engine.cached("adv_patch", build)


@dataclass
class PatchResult:
    """An adversarial patch and how often it works.

    Attributes:
        patch: (s, s, C) model range.
        origin: (row, col) of its top-left corner.
        target: The class it pushes towards.
        train_success: Share of the training images predicted as ``target`` with the patch
            (after the last step).
        success_rate: Share of the held-out images (true class != target) predicted as
            ``target`` with the patch.
        baseline_rate: The same share without the patch.
        n_test: Number of held-out images.
        losses: Mean cross-entropy of the target per step.
        examples: (m, H, W, C) a few held-out images with the patch, model range.
        example_probs: (m, K) their probabilities.
        seconds: Wall time.
    """

    patch: np.ndarray
    origin: tuple[int, int]
    target: int
    train_success: float
    success_rate: float
    baseline_rate: float
    n_test: int
    losses: np.ndarray
    examples: np.ndarray
    example_probs: np.ndarray
    seconds: float = 0.0


def adversarial_patch(
    info,
    train: np.ndarray,
    test: np.ndarray,
    target: int,
    size: int = 8,
    origin: tuple[int, int] = (0, 0),
    steps: int = 200,
    step_size: float = 0.05,
    batch_size: int = 64,
    seed: int = 0,
    test_labels: np.ndarray | None = None,
    n_examples: int = 8,
    progress: Progress = None,
) -> PatchResult:
    """Optimise a square adversarial patch at a fixed place (Brown et al. 2017,
    arXiv:1712.09665).

    The patch starts mid-grey and takes ``steps`` signed-gradient steps on the mean
    cross-entropy of ``target`` over random mini-batches of ``train``, with a step size decaying
    linearly from ``step_size`` to a tenth of it; it may take any valid pixel value (no epsilon
    bound: its size is the constraint). Its success rate is measured on ``test``, images it never
    saw, leaving out those whose true class (``test_labels``) is the target.

    Args:
        info: The ModelInfo.
        train: (N, H, W, C) images the patch is optimised on, model range.
        test: (M, H, W, C) other images to measure the success rate on.
        target: The class the patch should make the model answer.
        size: Side of the patch in pixels.
        origin: (row, col) of the patch's top-left corner.
        steps: Optimisation steps.
        step_size: First step size, fraction of the pixel range.
        batch_size: Mini-batch size (capped at 32 images of 224x224x3).
        seed: Seed of the mini-batch draws.
        test_labels: True classes of ``test`` (optional).
        n_examples: How many patched test images to return.
        progress: Optional callback receiving the completed fraction.

    Cost: ``steps`` forward + backward passes of ``batch_size`` images, then 2 forward passes per
    test image, batched.
    """
    t0 = time.perf_counter()
    engine = get_engine(info)
    h, w, c = engine.input_shape
    train = _as_batch(train, engine.input_shape)
    test = _as_batch(test, engine.input_shape)
    target = int(_labels(target, 1, engine.num_classes)[0])
    size = int(size)
    r0, c0 = int(origin[0]), int(origin[1])
    if not (1 <= size <= min(h, w)) or not (0 <= r0 <= h - size and 0 <= c0 <= w - size):
        raise ValueError(f"a {size}x{size} patch at {origin} does not fit in a {h}x{w} image")
    if test_labels is not None:
        keep = np.asarray(test_labels) != target
        test = test[keep]
    step, apply = _patch_fns(engine)
    lo, hi = engine.input_bounds()
    patch = np.broadcast_to((lo + hi) / 2.0, (size, size, c)).astype(np.float32).copy()
    org = np.array([r0, c0], np.int32)
    bs = min(cap_batch(engine, batch_size), len(train))
    rng = np.random.default_rng(seed)
    unit = to_model_units(info, 1.0)
    losses, hits = np.zeros(steps, np.float32), np.zeros(steps, np.float32)
    cls = np.int32(target)
    for i in range(steps):
        idx = rng.choice(len(train), bs, replace=False)
        alpha = (unit * step_size * (1.0 - 0.9 * i / max(1, steps - 1))).astype(np.float32)
        p, loss, hit = step(patch, train[idx], cls, org, alpha)
        patch = p.numpy()
        losses[i], hits[i] = float(loss), float(hit)
        if progress is not None and (i % 10 == 9 or i == steps - 1):
            progress(0.9 * (i + 1) / steps)
    tb = cap_batch(engine, 256)
    with_patch, without = [], []
    examples, ex_probs = [], []
    for i in range(0, len(test), tb):
        probs, xs = apply(patch, test[i : i + tb], org)
        with_patch.append(np.argmax(probs.numpy(), -1) == target)
        without.append(np.argmax(info.forward(test[i : i + tb], tb), -1) == target)
        if sum(len(e) for e in examples) < n_examples:
            examples.append(xs.numpy()[:n_examples])
            ex_probs.append(probs.numpy()[:n_examples])
    if progress is not None:
        progress(1.0)
    hit = np.concatenate(with_patch) if with_patch else np.zeros(0, bool)
    base = np.concatenate(without) if without else np.zeros(0, bool)
    ex = np.concatenate(examples)[:n_examples] if examples else np.zeros((0, h, w, c), np.float32)
    exp_ = (np.concatenate(ex_probs)[:n_examples] if ex_probs
            else np.zeros((0, engine.num_classes), np.float32))
    train_hit = float(np.mean(np.argmax(
        apply(patch, train[: min(len(train), tb)], org)[0].numpy(), -1) == target))
    return PatchResult(patch, (r0, c0), target, train_hit, float(hit.mean()) if len(hit) else 0.0,
                       float(base.mean()) if len(base) else 0.0, int(len(hit)), losses, ex, exp_,
                       time.perf_counter() - t0)


def paste_patch(x: np.ndarray, patch: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """Copy of ``x`` (H, W, C) or (N, H, W, C) with ``patch`` pasted at ``origin``."""
    out = np.array(x, np.float32, copy=True)
    r, c = origin
    s0, s1 = patch.shape[:2]
    out[..., r : r + s0, c : c + s1, :] = patch
    return out


# --------------------------------------------------------------------------- flip rates


def flip_rates(
    info,
    x: np.ndarray,
    labels: np.ndarray | None = None,
    epsilons: Sequence[float] = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 32 / 255),
    attacks: Sequence[str] = ("fgsm", "pgd"),
    pgd_steps: int = 10,
    batch_size: int = 256,
    progress: Progress = None,
):
    """Share of images whose prediction flips, per epsilon and attack.

    Each image is attacked untargeted against its clean prediction (FGSM: Goodfellow et al.
    2015, arXiv:1412.6572; PGD with ``pgd_steps`` steps: Madry et al. 2018, arXiv:1706.06083);
    an image "flips" when its predicted class changes.

    Args:
        info: The ModelInfo.
        x: (N, H, W, C) images, model range.
        labels: True classes (optional): adds the accuracy before and after each attack.
        epsilons: Radii as fractions of the pixel range.
        attacks: Any of ``"fgsm"``, ``"pgd"``.
        pgd_steps: PGD steps (step size ``2.5 * epsilon / steps``).
        batch_size: Images per pass.
        progress: Optional callback receiving the completed fraction.

    Returns:
        A pandas DataFrame, one row per epsilon: ``epsilon``, ``grey levels`` (epsilon * 255),
        ``<attack> flipped`` (share) and, with labels, ``accuracy`` (clean) and
        ``<attack> accuracy``.

    Cost: per image and epsilon 2 forward + 1 backward passes (FGSM) and ``pgd_steps``
    forward + backward passes (PGD), batched.
    """
    import pandas as pd

    unknown = set(attacks) - {"fgsm", "pgd"}
    if unknown:
        raise ValueError(f"unknown attack(s) {sorted(unknown)}; use 'fgsm' and/or 'pgd'")
    engine = get_engine(info)
    xs = _as_batch(x, engine.input_shape)
    jobs = [(e, a) for e in epsilons for a in attacks]
    rows = {float(e): {"epsilon": float(e), "grey levels": round(float(e) * 255, 2)}
            for e in epsilons}
    for j, (eps, att) in enumerate(jobs):
        if att == "fgsm":
            res = fgsm(info, xs, eps, batch_size=batch_size)
        else:
            res = pgd(info, xs, eps, steps=pgd_steps, batch_size=batch_size)
        row = rows[float(eps)]
        row[f"{att} flipped"] = float(res.flipped.mean())
        if labels is not None:
            y = np.asarray(labels)
            row["accuracy"] = float((res.pred_before == y).mean())
            row[f"{att} accuracy"] = float((res.pred_after == y).mean())
        if progress is not None:
            progress((j + 1) / len(jobs))
    return pd.DataFrame(list(rows.values()))
