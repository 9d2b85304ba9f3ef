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


def test_the_picks_of_a_station_the_table_lacks_are_left_out():
    meta = metadata(stations=stations.irregular(3, 50.0), origin_unknown=True)
    columns = ["x", "y", "tp1", "ts1", "ts2"]  # station 2's P and station 3 dropped
    made = arrivals.of_metadata(meta, columns=columns)
    assert made.define == ["t_first=fmin(tp1, ts1, ts2)", "dtp1=tp1 - t_first",
                           "dts1=ts1 - t_first", "dts2=ts2 - t_first"]
    assert made.absent == {"2": ["tp2"], "3": ["tp3", "ts3"]}
    assert arrivals.relative_picks(made) == ["dtp1", "dts1", "dts2"]


def test_fcnns_names_are_t_first_and_the_picks_after_it():
    assert arrivals.of_fcnn(["t_first", "dtp1", "dts12", "tp1", "dtx1", "d", "late"]) == \
        ["t_first", "dtp1", "dts12"]
