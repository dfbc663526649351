"""Incremental forward passes for occlusion: recompute only what the patch changed.

A patch covering a few pixels changes only a small window of each early feature map: the window
grows by the kernel at every convolution and shrinks by the stride at every pooling, until the
maps are small enough that it covers them. Occlusion sensitivity runs hundreds of such nearly
identical images, so most of a plain forward pass recomputes values that equal the unoccluded
image's. Here each convolution and pooling whose changed window is small enough is evaluated only
on that window: its input region (the previous window with the kernel's border) is gathered from
the unoccluded image's map with the previous window pasted in, then a ``VALID`` convolution or
pooling runs on it. Once a window covers most of its map the rest of the network runs on full
maps (the window pasted into the unoccluded map). The result equals the full forward pass up to
float rounding (the tests compare both).

This is the idea of incremental CNN inference for occlusion (Nakandala, Kumar and Papakonstantinou
2019, "Incremental and Approximate Inference for Faster Occlusion-based Deep CNN Explanations",
SIGMOD 2019), without their approximations.

It applies to models that are a single chain of layers (each layer reads the previous one's
output, as in VGG-style networks and every ``keras.Sequential``); Conv2D layers (channels last,
no groups) and ``valid`` MaxPooling2D / AveragePooling2D run on windows; layers that act on
each position alone (batch normalisation, activations, dropout, rescaling) keep it; any other
layer with a spatial output makes the rest of the network run in full. Models with branches
(ResNets, Inception) are not planned, and occlusion falls back to plain batched passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Layers that act on each spatial position independently: the changed window stays the same.
POINTWISE = frozenset({
    "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "BatchNormalization",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "Rescaling", "Identity",
})
POOLING = frozenset({"MaxPooling2D", "AveragePooling2D"})
#: A convolution or pooling runs on a window only when the window covers less than this share
#: of its output map (above it, the gathers cost more than the work they save).
CROP_BELOW = 0.8


@dataclass(frozen=True)
class Step:
    """One layer of the spatial part of a chain model.

    Attributes:
        layer: The Keras layer.
        kind: ``"conv"``, ``"pool"``, ``"pointwise"`` or ``"other"``.
        kernel: Effective kernel size (rows, cols), dilation included (conv and pool).
        stride: (rows, cols).
        pad: Zero rows/cols added before the first input row/col (``same`` padding).
        in_hw: Input height and width.
        out_hw: Output height and width.
        in_c: Input channels.
        out_c: Output channels.
    """

    layer: object
    kind: str
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)
    in_hw: tuple[int, int] = (0, 0)
    out_hw: tuple[int, int] = (0, 0)
    in_c: int = 0
    out_c: int = 0


@dataclass(frozen=True)
class Plan:
    """A chain model split into its spatial part (``steps``) and the rest (``tail``)."""

    steps: tuple[Step, ...]
    tail: tuple[object, ...]


def _pad_before(size: int, out: int, k: int, s: int, padding: str) -> int:
    if padding != "same":
        return 0
    total = max((out - 1) * s + k - size, 0)
    return total // 2


def plan(model) -> Plan | None:
    """A :class:`Plan` for ``model``, or None when it is not a chain with a spatial input."""
    from vizcore.graph import graph_of

    g = graph_of(model)
    layers = g.chain()
    if not layers or len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        return None
    steps: list[Step] = []
    for i, layer in enumerate(layers):
        out_shape = g.output_shape(layer.name)
        if len(out_shape) != 4:
            return Plan(tuple(steps), tuple(layers[i:]))
        in_shape = tuple(g.input(layer.name).shape)
        in_hw, out_hw = (int(in_shape[1]), int(in_shape[2])), (int(out_shape[1]), int(out_shape[2]))
        chans = {"in_c": int(in_shape[-1]), "out_c": int(out_shape[-1])}
        name = type(layer).__name__
        fmt = getattr(layer, "data_format", "channels_last")
        if name == "Conv2D" and fmt == "channels_last" and getattr(layer, "groups", 1) == 1:
            dil = tuple(int(d) for d in layer.dilation_rate)
            k = tuple((int(k) - 1) * d + 1 for k, d in zip(layer.kernel_size, dil))
            s = tuple(int(v) for v in layer.strides)
            pad = tuple(_pad_before(in_hw[a], out_hw[a], k[a], s[a], layer.padding)
                        for a in range(2))
            steps.append(Step(layer, "conv", k, s, pad, in_hw, out_hw, **chans))
        elif name in POOLING and fmt == "channels_last":
            k = tuple(int(v) for v in layer.pool_size)
            s = tuple(int(v) for v in (layer.strides or layer.pool_size))
            pad = tuple(_pad_before(in_hw[a], out_hw[a], k[a], s[a], layer.padding)
                        for a in range(2))
            steps.append(Step(layer, "pool", k, s, pad, in_hw, out_hw, **chans))
        elif name in POINTWISE and in_hw == out_hw:
            steps.append(Step(layer, "pointwise", in_hw=in_hw, out_hw=out_hw, **chans))
        else:
            steps.append(Step(layer, "other", in_hw=in_hw, out_hw=out_hw, **chans))
    return Plan(tuple(steps), ())


@dataclass(frozen=True)
class Geometry:
    """How each step runs for a set of patch positions.

    Attributes:
        modes: Per step: ``"win"`` (evaluated on a window of its output that contains every
            changed value) or ``"full"`` (the whole map).
        sizes: Per step: the window's (rows, cols), or None in full mode.
        offsets: (N, steps, 2) int32: top-left output position of each image's window (zero
            for steps in full mode).
    """

    modes: tuple[str, ...]
    sizes: tuple[tuple[int, int] | None, ...]
    offsets: np.ndarray

    @property
    def cropped(self) -> int:
        """How many convolutions and poolings run on a window."""
        return sum(1 for m, s in zip(self.modes, self.sizes) if m == "win" and s != ())

    @property
    def key(self) -> tuple:
        """What a compiled forward function depends on."""
        return self.modes, self.sizes


def _through(lo: np.ndarray, hi: np.ndarray, k: int, s: int, pad: int, out: int):
    """Output rows [lo', hi') of a sliding window (kernel k, stride s, ``pad`` before) that read
    any of the input rows [lo, hi)."""
    a, b = lo + pad, hi + pad
    new_lo = np.maximum(-((k - 1 - a) // s), 0)  # ceil((a - k + 1) / s)
    new_hi = np.minimum((b - 1) // s + 1, out)
    return new_lo, np.maximum(new_hi, new_lo)


def _windowable(step: Step) -> bool:
    if step.kind == "conv":
        return True
    # a "same" pooling pads with values a window crop cannot reproduce (-inf, excluded counts)
    return step.kind == "pool" and getattr(step.layer, "padding", "valid") == "valid"


def geometry(p: Plan, origins: np.ndarray, patch: tuple[int, int],
             crop_below: float | None = None) -> Geometry:
    """The changed window of every layer for patches of size ``patch`` at ``origins`` (N, 2),
    and from it how to run each step: on a window when the window covers less than
    ``crop_below`` of the step's output map (default :data:`CROP_BELOW`), else in full."""
    crop_below = CROP_BELOW if crop_below is None else crop_below
    origins = np.asarray(origins, np.int64)
    n = len(origins)
    box = [[origins[:, a], origins[:, a] + patch[a]] for a in range(2)]
    if p.steps:
        for a in range(2):
            box[a][1] = np.minimum(box[a][1], p.steps[0].in_hw[a])
    modes: list[str] = []
    sizes: list[tuple[int, int] | None] = []
    offsets = np.zeros((n, len(p.steps), 2), np.int64)
    windowed = False  # the state entering the step: a window (True) or full maps
    for i, step in enumerate(p.steps):
        if step.kind in ("conv", "pool"):
            box = [list(_through(box[a][0], box[a][1], step.kernel[a], step.stride[a],
                                 step.pad[a], step.out_hw[a])) for a in range(2)]
        elif step.kind == "other":
            box = [[np.zeros(n, np.int64), np.full(n, step.out_hw[a], np.int64)]
                   for a in range(2)]
        if step.kind == "pointwise" and windowed:
            modes.append("win")
            sizes.append(())  # same window as the step before
            offsets[:, i] = offsets[:, i - 1]
            continue
        size = tuple(max(1, int((box[a][1] - box[a][0]).max(initial=1))) for a in range(2))
        small = size[0] * size[1] < crop_below * step.out_hw[0] * step.out_hw[1]
        if _windowable(step) and small:
            modes.append("win")
            sizes.append(size)
            offsets[:, i] = np.stack([np.clip(box[a][0], 0, step.out_hw[a] - size[a])
                                      for a in range(2)], axis=-1)
            windowed = True
        else:
            modes.append("full")
            sizes.append(None)
            windowed = False
    return Geometry(tuple(modes), tuple(sizes), offsets.astype(np.int32))


# --------------------------------------------------------------------------- gather indices
#
# Every window a step reads is assembled by one gather from a flat table of rows (one row per
# map position, channels along the row), and so is every full map that follows a window. The
# tables, by what the step reads:
#
# * the input image: [x (H*W rows); fill (H*W rows); one zero row]
# * full maps of the batch: [h (B*H*W rows); one zero row]
# * a window: [unoccluded map (H*W rows); one zero row; the windows (B*h*w rows)]
#
# The zero row is the convolution's ``same`` padding. The indices depend only on the patch
# positions, so they are computed here with numpy and the compiled function does no index
# arithmetic at all.


def _source_index(state: str, rows: np.ndarray, cols: np.ndarray, hw: tuple[int, int],
                  patch_box=None, win=None) -> np.ndarray:
    """(B, len(rows[0]), len(cols[0])) int32 indices into the table of ``state`` for the map
    positions ``rows`` (B, r) x ``cols`` (B, c) (positions outside the map read the zero row).

    Args:
        state: ``"input"``, ``"full"`` or ``"win"`` (see the module comment above).
        patch_box: For ``"input"``: (top (B,), left (B,), height, width) of each patch.
        win: For ``"win"``: (offsets (B, 2), (h, w)) of each image's window.
    """
    h, w = hw
    b = len(rows)
    r, c = rows[:, :, None], cols[:, None, :]
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    pos = np.clip(r, 0, h - 1) * w + np.clip(c, 0, w - 1)
    if state == "input":
        top, left, ph, pw = patch_box
        covered = ((r >= top[:, None, None]) & (r < top[:, None, None] + ph)
                   & (c >= left[:, None, None]) & (c < left[:, None, None] + pw))
        idx = np.where(covered, pos + h * w, pos)
        zero = 2 * h * w
    elif state == "full":
        idx = pos + (np.arange(b) * h * w)[:, None, None]
        zero = b * h * w
    else:
        off, (sh, sw) = win
        rr, cc = r - off[:, 0, None, None], c - off[:, 1, None, None]
        in_win = (rr >= 0) & (rr < sh) & (cc >= 0) & (cc < sw)
        widx = h * w + 1 + (np.arange(b) * sh * sw)[:, None, None] + rr * sw + cc
        idx = np.where(in_win, widx, pos)
        zero = h * w
    return np.where(inside, idx, zero).astype(np.int32)


def gather_indices(p: Plan, g: Geometry, origins: np.ndarray, patch: tuple[int, int],
                   rows: slice) -> list[np.ndarray]:
    """The gather indices of one batch (the patch positions ``origins[rows]``): one (B, n)
    int32 array per step, plus one for the final paste; (B, 0) where a step gathers nothing."""
    o = np.asarray(origins, np.int64)[rows]
    off = g.offsets[rows].astype(np.int64)
    b = len(o)
    none = np.zeros((b, 0), np.int32)
    out: list[np.ndarray] = []
    state, win = "input", None
    box = (o[:, 0], o[:, 1], patch[0], patch[1])
    for i, step in enumerate(p.steps):
        mode, size = g.modes[i], g.sizes[i]
        if mode == "win" and size == ():
            out.append(none)
            continue
        if mode == "win":
            length = [(size[a] - 1) * step.stride[a] + step.kernel[a] for a in range(2)]
            r0 = off[:, i] * np.asarray(step.stride) - np.asarray(step.pad)
            rr = r0[:, :1] + np.arange(length[0])[None]
            cc = r0[:, 1:] + np.arange(length[1])[None]
            out.append(_source_index(state, rr, cc, step.in_hw, box, win).reshape(b, -1))
            state, win = "win", (off[:, i], size)
            continue
        if state == "full":
            out.append(none)
        else:
            rr = np.broadcast_to(np.arange(step.in_hw[0]), (b, step.in_hw[0]))
            cc = np.broadcast_to(np.arange(step.in_hw[1]), (b, step.in_hw[1]))
            out.append(_source_index(state, rr, cc, step.in_hw, box, win).reshape(b, -1))
        state, win = "full", None
    if state == "win":
        hw = p.steps[-1].out_hw
        rr = np.broadcast_to(np.arange(hw[0]), (b, hw[0]))
        cc = np.broadcast_to(np.arange(hw[1]), (b, hw[1]))
        out.append(_source_index(state, rr, cc, hw, box, win).reshape(b, -1))
    else:
        out.append(none)
    return out


# --------------------------------------------------------------------------- TensorFlow


def _valid_op(step: Step, region):
    """The conv or pooling ``step`` applied with ``VALID`` padding to a region."""
    import tensorflow as tf

    layer = step.layer
    if step.kind == "pool":
        fn = tf.nn.max_pool2d if type(layer).__name__ == "MaxPooling2D" else tf.nn.avg_pool2d
        return fn(region, list(step.kernel), list(step.stride), "VALID")
    y = tf.nn.conv2d(region, layer.kernel, strides=list(step.stride), padding="VALID",
                     dilations=list(layer.dilation_rate))
    if layer.use_bias:
        y = tf.nn.bias_add(y, layer.bias)
    return layer.activation(y) if layer.activation is not None else y


def base_maps(p: Plan, x):
    """Output of every step for one image batch ``x`` (B, H, W, C), full passes."""
    outs, h = [], x
    for step in p.steps:
        h = step.layer(h, training=False)
        outs.append(h)
    return outs


def forward(p: Plan, g: Geometry, x, fill, indices, bases):
    """The model's output for copies of ``x`` (H, W, C) occluded by ``fill`` (H, W, C).

    ``indices`` come from :func:`gather_indices` (they encode the patch positions) and
    ``bases`` are the unoccluded image's step outputs (:func:`base_maps`, (h, w, c) each).
    Steps in window mode compute only their window, from a region gathered out of the unoccluded
    map and the previous window (or the full maps); steps in full mode run as usual on full
    maps gathered the same way."""
    import tensorflow as tf

    def flat(m):
        return tf.reshape(m, [-1, int(m.shape[-1])])

    def zero(m):
        return tf.zeros([1, int(m.shape[-1])], m.dtype)

    b = tf.shape(indices[0])[0]
    h = win = None
    for i, step in enumerate(p.steps):
        mode, size = g.modes[i], g.sizes[i]
        if mode == "win" and size == ():
            win = step.layer(win, training=False)
            continue
        if i == 0:
            table = tf.concat([flat(x), flat(fill), zero(x)], axis=0)
        elif win is not None:
            table = tf.concat([flat(bases[i - 1]), zero(win), flat(win)], axis=0)
        elif mode == "win":
            table = tf.concat([flat(h), zero(h)], axis=0)
        else:
            table = None
        channels = step.in_c
        if mode == "win":
            length = [(size[a] - 1) * step.stride[a] + step.kernel[a] for a in range(2)]
            region = tf.reshape(tf.gather(table, indices[i]), [b, *length, channels])
            win = _valid_op(step, region)
            continue
        if table is not None:
            h = tf.reshape(tf.gather(table, indices[i]), [b, *step.in_hw, channels])
            win = None
        h = step.layer(h, training=False)
    if win is not None:
        last = bases[len(p.steps) - 1]
        table = tf.concat([flat(last), zero(win), flat(win)], axis=0)
        h = tf.reshape(tf.gather(table, indices[-1]), [b, *p.steps[-1].out_hw,
                                                       int(last.shape[-1])])
    for layer in p.tail:
        h = layer(h, training=False)
    return h
