"""Lengths for people: errors of metres in a km region read as 7.98 m, not 0.00798 km.

Plain Python (no numpy), for plots and printed tables alike."""

import math

# Powers of ten of a metre; the data's length units that are understood.
_POWERS = {"km": 3, "m": 0, "cm": -2, "mm": -3, "µm": -6, "μm": -6, "um": -6, "nm": -9}
_LADDER = ("km", "m", "mm", "µm", "nm")  # what a length is shown in, the largest first


def readable_length(size, unit):
    """``(factor, unit)`` to show lengths of about ``size`` (in ``unit``) in: ``unit`` itself
    while ``size`` is 1 to 1000 of it, else the largest of km, m, mm, µm and nm that ``size`` is
    at least 1 of (``value * factor`` is then in the new unit). ``(1, unit)`` where ``unit`` is
    no length or ``size`` is no positive finite number."""
    power, size = _POWERS.get(unit), float(size)
    if power is None or not (math.isfinite(size) and size > 0) or 1 <= size < 1000:
        return 1.0, unit
    metres = math.log10(size) + power
    shown = next((u for u in _LADDER if metres >= _POWERS[u]), _LADDER[-1])
    return 10.0 ** (power - _POWERS[shown]), shown

