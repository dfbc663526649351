"""ui.selection: a point picked in an embedding map maps back to its sample position and image."""

import numpy as np

from ui.selection import point_from_selection
from vizcore.embed import sample_indices


def test_selecting_a_point_returns_its_image():
    from ui.embeddings import scatter_figure
    from vizcore.data import load_dataset

    ds = load_dataset("fashion_mnist")
    idx = sample_indices(ds, 300, seed=0)
    labels = ds.labels[idx]
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(300, 2))
    preds = labels.copy()
    preds[::7] = (preds[::7] + 1) % 10  # some wrong predictions: their own trace
    fig = scatter_figure(coords, labels, ds.class_names, preds, np.full(300, 0.9),
                         ds.class_names, idx, selected=42)
    for t, j in [(3, 5), (len(fig.data) - 2, 2), (len(fig.data) - 1, 0)]:
        trace = fig.data[t]
        cd = list(trace.customdata[j])
        event = {"selection": {"points": [{"curve_number": t, "point_index": j,
                                            "x": trace.x[j], "y": trace.y[j],
                                            "customdata": cd}],
                               "point_indices": [j], "box": [], "lasso": []}}
        pos = point_from_selection(event)
        assert coords[pos, 0] == trace.x[j] and coords[pos, 1] == trace.y[j]
        assert int(idx[pos]) == cd[1]
        np.testing.assert_array_equal(ds.images[idx[pos]], ds.images[cd[1]])
        assert ds.class_names[labels[pos]] == cd[2]
    assert point_from_selection({"selection": {"points": [{"customdata": [42]}]}}) == 42
    assert fig.data[-1].name == "selected" and fig.data[-1].customdata[0][0] == 42
    assert point_from_selection({"selection": {"points": []}}) is None
    assert point_from_selection(None) is None
