"""Tables out: a table written chunk by chunk in the format its suffix names (``-``: CSV on
stdout), with fcnn's label metadata (:mod:`fcnn_cli.data.metadata`), into a file that appears
only once all of it is written."""

import contextlib
import json
from pathlib import Path

from fcnn_cli.core.errors import FcnnError, first_line
from fcnn_cli.core.fileio import atomic_path, is_stream, open_output, writing
from fcnn_cli.data.metadata import CSV_META_PREFIX, META_KEY
from fcnn_cli.data.tables import COMPRESSED, SELECTABLE, input_file, table_format


class TableWriter:
    """Writes a table chunk by chunk — by suffix, ``-`` for CSV on stdout — into a temporary
    file that replaces ``path`` only when all of it is written (a device or FIFO is written to
    directly: see ``fileio.atomic_path``)."""

    def __init__(self, path, metadata=None):
        self.path, self.format = str(path), table_format(path)
        if Path(self.path).suffix.lower() in COMPRESSED:
            raise FcnnError(f"{path}: fcnn writes {self.format.upper()} files uncompressed; "
                            f"name the output {Path(self.path).stem!r}")
        if self.format in SELECTABLE and is_stream(self.path):
            # these files are finished by going back to their start (a row count, an index)
            raise FcnnError(f"{path}: {self.format.upper()} files cannot be written to a pipe "
                            "or device, which cannot go back to finish them; write a regular "
                            "file, or CSV or Parquet here")
        if input_file(path) != self.path:
            raise FcnnError(f"{path}: an output takes no ':' selector: fcnn writes one table "
                            "(the tree 'events', the root group's datasets, the HDU 'EVENTS'); "
                            "name the file alone")
        self.metadata = metadata or {}  # fcnn's label metadata, written with the table
        self.rows, self._header_done, self._parquet, self._writer = 0, False, None, None

    def __enter__(self):
        with contextlib.ExitStack() as stack:  # a failure here leaves no temporary file
            if self.format in SELECTABLE:
                self._open_writer(stack)
            else:
                self._stream = stack.enter_context(open_output(self.path))
                stack.push(self._close_parquet)  # runs first: the footer, then the file
            self._stack = stack.pop_all()
        return self

    def _open_writer(self, stack):
        from fcnn_cli.data import formats

        formats.library(self.format, self.path)  # a missing extra: before any file
        target = stack.enter_context(atomic_path(self.path))
        with writing(self.path):
            self._writer = formats.module(self.format).Writer(target, self.path, self.metadata)
        stack.push(self._close_writer)  # runs first: the file's end, then its rename

    def write(self, frame):
        with writing(self.path):
            self._write(frame)
        self.rows += len(frame)

    def _write(self, frame):
        if self._writer is not None:
            self._writer.write(frame)
        elif self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                # A column empty in the first chunk has no type yet: text takes any later value.
                schema = pa.schema([f.with_type(pa.large_string()) if pa.types.is_null(f.type)
                                    else f for f in arrow.schema], metadata=arrow.schema.metadata)
                if self.metadata:
                    schema = schema.with_metadata({**(schema.metadata or {}), META_KEY.encode():
                                                   json.dumps(self.metadata).encode()})
                self._parquet = pq.ParquetWriter(self._stream, schema)
            try:
                arrow = arrow.cast(self._parquet.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise FcnnError(f"{self.path}: a column changes its type partway through the "
                                f"input ({first_line(e, 120)}), which a Parquet file cannot "
                                "hold; write CSV instead") from None
            self._parquet.write_table(arrow)
        else:
            if not self._header_done and self.metadata:
                self._stream.write(CSV_META_PREFIX + json.dumps(self.metadata).encode() + b"\n")
            # float_format=None: the shortest representation that reads back to the same value.
            self._stream.write(frame.to_csv(index=False, header=not self._header_done,
                                            lineterminator="\n").encode())
            self._header_done = True

    def _close_parquet(self, kind, value, tb):
        if self._parquet is None:
            return
        if kind is None:
            with writing(self.path):
                self._parquet.close()
        else:  # the file is thrown away: its footer may fail to write, quietly
            with contextlib.suppress(Exception):
                self._parquet.close()

    def _close_writer(self, kind, value, tb):
        if kind is None:
            with writing(self.path):
                self._writer.close()
        else:  # the file is thrown away: it may fail to finish, quietly
            with contextlib.suppress(Exception):
                self._writer.close()

    def __exit__(self, kind, value, tb):
        return self._stack.__exit__(kind, value, tb)


def write_table(table, path):
    """Write a :class:`Table` in the format of its suffix, atomically, with its label metadata;
    ``-`` writes CSV to stdout."""
    with TableWriter(path, table.metadata()) as writer:
        writer.write(table.frame)

