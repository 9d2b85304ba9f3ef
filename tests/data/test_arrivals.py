"""What fcnn makes of an earthquake table by default, from its metadata."""

from fcnn_cli.data import arrivals, simulate, stations


def metadata(**options):
    return simulate.earthquakes(n=2, seed=0, **options).extra


def test_a_table_whose_origin_time_is_unknown_gets_its_picks_after_the_earliest():
    made = arrivals.of_metadata(metadata(stations=stations.irregular(3, 50.0),
                                         origin_unknown=True))
    picks = ["tp1", "ts1", "tp2", "ts2", "tp3", "ts3"]
    assert made.define == ["t_first=fmin(tp1, ts1, tp2, ts2, tp3, ts3)",
                           *(f"d{p}={p} - t_first" for p in picks)]
    assert made.hidden == (*picks, "t_first", "t0") and made.missing == 0


def test_the_lecture_table_gets_nothing():
    assert arrivals.of_metadata(metadata()) == arrivals.Defaults([], (), 0.0)
    assert arrivals.of_metadata({}) == arrivals.Defaults([], (), 0.0)


def test_missing_picks_are_counted_whatever_the_origin_time():
    made = arrivals.of_metadata(metadata(missing=0.2))
    assert made.missing == 0.2 and made.define == []


def test_a_definition_of_the_run_of_the_same_name_stands_in_for_fcnns():
    made = arrivals.of_metadata(metadata(origin_unknown=True),
                                ["dtp1", "other"])
    names = [text.partition("=")[0] for text in made.define]
    assert "dtp1" not in names and "dts1" in names and "tp1" in made.hidden
