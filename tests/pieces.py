"""Parquet files in row groups, the pieces that streamed training reads."""

import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet(frame, path, targets, group_rows=200):
    meta = {b"fcnn": ('{"targets": %s}' % str(list(targets)).replace("'", '"')).encode()}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, **meta}), path,
                   row_group_size=group_rows)
    return path


def three_files(tmp_path, frame):
    """A directory of three files of 1000 rows, 4 pieces each."""
    d = tmp_path / "d"
    for k in range(3):
        write_parquet(frame.iloc[k * 1000:(k + 1) * 1000], d / f"p{k}.parquet", ["x", "y"], 250)
    return d
