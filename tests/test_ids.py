"""Ids: UUIDv7, unique within a process and across the processes a server forks."""

from __future__ import annotations

import os
import uuid

from todoscale.models import new_id


def test_ids_are_unique_time_ordered_uuid7():
    ids = [new_id() for _ in range(5_000)]  # more than one page of pooled random bytes
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(each).version == 7 and len(each) == 32 for each in ids)
    assert ids[0][:12] <= ids[-1][:12]  # the millisecond timestamp leads


def test_a_forked_child_never_repeats_its_parents_ids():
    new_id()  # the parent's pool holds bytes the child must not hand out again
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next ids and leave at once
        os.close(read)
        os.write(write, "".join(new_id()[12:] for _ in range(20)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = [new_id()[12:] for _ in range(20)]
    children = [child[n : n + 20] for n in range(0, len(child), 20)]
    assert len(children) == 20
    assert not set(children) & set(parent)
