"""The model zoo, continued: ``keras.applications`` architectures with random weights at a small
input size (residual Add, Concatenate, depthwise and separable convolutions, batch norm,
EfficientNet's own Rescaling/Normalization), each saved and loaded through the real upload
loader, then explained with every registered method (a file of its own so that the test runner
can spread the two halves of the zoo over both cores)."""

from __future__ import annotations

import pytest

from tests.core.test_model_zoo import _APPS, CASES, _uploaded, check_every_method


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith(_APPS)])
def test_every_method_runs_or_refuses_clearly_on_applications(case, tmp_path_factory):
    ran, refused = check_every_method(_uploaded(case, tmp_path_factory))
    lrp = {"lrp_epsilon", "lrp_alphabeta_21", "lrp_alphabeta_10", "lrp_zplus", "lrp_composite"}
    if case.startswith("EfficientNetB0"):  # swish activations and squeeze-excite Multiply
        assert lrp <= set(refused)
    else:  # residual Add, Concatenate, depthwise convs, ReLU6, zero padding: all supported
        assert lrp <= set(ran), {k: refused.get(k) for k in lrp}
