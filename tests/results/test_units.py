import math

import pytest

from fcnn_cli.results.units import readable_length


@pytest.mark.parametrize("size, unit, factor, shown", [
    (0.00798, "km", 1e3, "m"),  # metre-size errors in a km region
    (0.5, "km", 1e3, "m"),
    (0.001, "km", 1e3, "m"),
    (2e-5, "km", 1e6, "mm"),
    (3.0, "km", 1.0, "km"),  # 1 to 1000 of the data's own unit: kept
    (999.0, "m", 1.0, "m"),
    (50.0, "cm", 1.0, "cm"),
    (1500.0, "m", 1e-3, "km"),
    (5000.0, "km", 1.0, "km"),  # nothing larger than km
    (0.3, "cm", 10.0, "mm"),
    (4e-3, "mm", 1e3, "µm"),
    (1e-13, "m", 1e9, "nm"),  # nothing smaller than nm
])
def test_a_length_is_shown_in_the_unit_it_reads_best_in(size, unit, factor, shown):
    assert readable_length(size, unit) == (pytest.approx(factor), shown)
    assert 1 <= size * readable_length(size, unit)[0] < 1000 or shown in ("km", "nm")


@pytest.mark.parametrize("size, unit", [(0.01, "GeV"), (0.01, ""), (0.01, "s"), (0.0, "km"),
                                        (-1.0, "km"), (math.nan, "km"), (math.inf, "km")])
def test_no_length_or_no_size_keeps_the_unit(size, unit):
    assert readable_length(size, unit) == (1.0, unit)
