"""Values of many files added up say what prometheus_client reads in each file."""

from __future__ import annotations

from prometheus_client.mmap_dict import MmapedDict, mmap_key

from todoscale.ops import valuefile


def _child(route: str, status: str, le_values: tuple[str, ...]) -> list[str]:
    names, labels = ["route", "status", "le"], [route, status]
    keys = [mmap_key("t", "t_bucket", names, [*labels, le], "t") for le in le_values]
    return [*keys, mmap_key("t", "t_sum", names[:-1], labels, "t")]


def _write(path, keys, start):
    values = MmapedDict(str(path))
    for n, key in enumerate(keys):
        values.write_value(key, start + n, 0.0)
    values.close()


def _plain(paths) -> dict[bytes, float]:
    total: dict[bytes, float] = {}
    for path in paths:
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            total[key.encode()] = total.get(key.encode(), 0.0) + value
    return total


def test_series_in_any_order_and_keys_that_differ_in_a_byte_sum_right(tmp_path):
    bounds = ("0.1", "1.0", "+Inf")
    a, b = _child("/a", "200", bounds), _child("/b", "200", bounds)
    same_length = _child("/a", "404", bounds)  # differs from /a 200 in one byte a key
    fewer = _child("/a", "200", bounds[1:])  # starts like /a 200's run, ends elsewhere
    files = [tmp_path / f"histogram_{n}.db" for n in range(5)]
    _write(files[0], a + b, 1)
    _write(files[1], b + a, 10)
    _write(files[2], same_length + a, 100)
    _write(files[3], b + same_length + [mmap_key("u", "u_total", [], [], "u")], 1000)
    _write(files[4], fewer + b, 5)
    sums: dict[bytes, float] = {}
    for path in files:
        valuefile.add_values(path, sums)
    assert sums == _plain(files)


def test_an_empty_file_adds_nothing(tmp_path):
    path = tmp_path / "counter_1.db"
    valuefile.ValueFile(path).close()
    sums: dict[bytes, float] = {}
    valuefile.add_values(path, sums)
    assert sums == {}
