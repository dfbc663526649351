"""Reading a user's pick back from a plotly chart: the sample position of the clicked point.

Pure Python (no Streamlit import), so it is tested without running a page.
"""

from __future__ import annotations

import numpy as np


def point_from_selection(selection) -> int | None:
    """The sample position of the point a user picked in a plotly scatter.

    The figures put the sample position first in each point's ``customdata``; ``selection`` is
    Streamlit's plotly selection state (``{"points": [{"customdata": [pos, ...], ...}], ...}``)
    or the whole event (``{"selection": {...}}``). Returns None when nothing usable is selected.
    """
    if not selection:
        return None
    if "selection" in selection and "points" not in selection:
        selection = selection["selection"]
    for pt in selection.get("points", []) or []:
        cd = pt.get("customdata")
        if cd is None:
            continue
        value = cd[0] if isinstance(cd, (list, tuple, np.ndarray)) else cd
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return None
