from hypothesis import given
from hypothesis import strategies as st

from shoal.logs.multiplex import STDERR, STDOUT, SYSTEMERR, Demultiplexer, frame


def test_frame_header_is_dockers():
    assert frame(STDOUT, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert frame(STDERR, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"
    big = frame(SYSTEMERR, b"x" * 70000)
    assert big[:8] == b"\x03\x00\x00\x00\x00\x01\x11\x70"


frames_strategy = st.lists(
    st.tuples(st.sampled_from([STDOUT, STDERR, SYSTEMERR]), st.binary(max_size=300)), max_size=20
)


@given(frames_strategy, st.lists(st.integers(min_value=1, max_value=50), min_size=1))
def test_demultiplexer_recovers_frames_from_any_split(frames, cuts):
    wire = b"".join(frame(s, p) for s, p in frames)
    demux = Demultiplexer()
    got = []
    pos = 0
    i = 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        got += demux.feed(wire[pos : pos + step])
        pos += step
        i += 1
    assert got == frames
    assert demux.pending == 0


def test_a_cut_stream_leaves_bytes_pending():
    demux = Demultiplexer()
    assert demux.feed(frame(STDOUT, b"abc")[:-1]) == []
    assert demux.pending == 10
