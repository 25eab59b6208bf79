"""The jitter buffer: start at target fill, conceal gaps, count underruns and late frames."""

from hypothesis import given
from hypothesis import strategies as st

from audionet.dns.proto.jitter import ItemKind, JitterBuffer


def test_waits_for_target_then_plays_in_order() -> None:
    jb = JitterBuffer(target=3)
    jb.put(11, b"b")
    assert jb.pop().kind is ItemKind.WAIT
    jb.put(10, b"a")
    assert jb.pop().kind is ItemKind.WAIT
    jb.put(12, b"c")
    assert [jb.pop().packet for _ in range(3)] == [b"a", b"b", b"c"]
    assert jb.pop().kind is ItemKind.WAIT
    assert jb.underruns == 1
    assert jb.played == 3


def test_gap_is_concealed_and_late_frame_dropped() -> None:
    jb = JitterBuffer(target=1)
    jb.put(0, b"0")
    jb.put(2, b"2")
    kinds = [jb.pop() for _ in range(3)]
    assert [k.kind for k in kinds] == [ItemKind.FRAME, ItemKind.CONCEAL, ItemKind.FRAME]
    assert kinds[1].number == 1
    assert not jb.put(1, b"1")
    assert jb.late == 1 and jb.concealed == 1


def test_rebuffers_after_underrun() -> None:
    jb = JitterBuffer(target=2)
    for i in range(2):
        jb.put(i, b"x")
    jb.pop(), jb.pop()
    assert jb.pop().kind is ItemKind.WAIT
    jb.put(2, b"y")
    assert jb.pop().kind is ItemKind.WAIT  # one frame is below the target of two
    jb.put(3, b"z")
    assert jb.pop().packet == b"y"


def test_reset() -> None:
    jb = JitterBuffer(target=1)
    jb.put(100, b"x")
    jb.pop()
    jb.reset()
    jb.put(0, b"new")
    assert jb.pop().packet == b"new"


@given(st.permutations(list(range(30))))
def test_any_arrival_order_before_start(order: list[int]) -> None:
    jb = JitterBuffer(target=30)
    for n in order:
        jb.put(n, bytes([n]))
    assert [jb.pop().packet for _ in range(30)] == [bytes([n]) for n in range(30)]


def test_target_grows_by_half_per_recurring_underrun_up_to_max() -> None:
    jb = JitterBuffer(target=4, max_target=8, window=50)
    n = 0
    targets = []
    for _ in range(5):
        for _ in range(jb.target):
            jb.put(n, b"x")
            n += 1
        while jb.pop().kind is not ItemKind.WAIT:
            pass
        targets.append(jb.target)
    assert targets == [4, 6, 8, 8, 8]  # the first underrun alone is no pattern
    assert jb.underruns == 5


def test_underruns_far_apart_leave_the_target_alone() -> None:
    jb = JitterBuffer(target=2, max_target=8, window=10)
    n = 0
    for _ in range(3):
        for _ in range(12):  # more than ``window`` frames between underruns
            jb.put(n, b"x")
            n += 1
        while jb.pop().kind is not ItemKind.WAIT:
            pass
    assert jb.underruns == 3 and jb.target == 2


def test_fixed_target_without_max() -> None:
    jb = JitterBuffer(target=2)
    jb.put(0, b"x")
    jb.put(1, b"x")
    jb.pop(), jb.pop(), jb.pop()
    assert jb.underruns == 1 and jb.target == 2
