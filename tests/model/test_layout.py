
from liveworld.model.layout import Layout


def test_token_table_positions():
    lay = Layout(text_len=3, audio_tokens=2, grid=(2, 3), clean_frames=2, noisy_frames=2)
    tab = lay.token_table()
    N = lay.tokens_per_frame
    assert N == 1 + 2 + 6 and lay.length == 3 + 4 * N
    assert tab["frame"][:3].tolist() == [-1, -1, -1] and tab["col"][:3].tolist() == [0, 1, 2]
    first = slice(3, 3 + N)
    assert tab["frame"][first].unique().tolist() == [0]
    assert tab["row"][first].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # action, 2 audio, then a 2x3 grid
    assert tab["col"][first].tolist() == [0, 1, 2, 1, 2, 3, 1, 2, 3]
    # the noisy copy of frame 1 sits at the same frame position as the clean frame 1
    assert tab["frame"][3 + 3 * N] == 1 and tab["segment"][3 + 3 * N] == 2
    assert tab["slot"].max() == 4


def test_block_causal_mask():
    lay = Layout(text_len=2, audio_tokens=1, grid=(1, 2), clean_frames=3, noisy_frames=3)
    m = lay.attention_mask()
    tab = lay.token_table()
    seg, fr = tab["segment"], tab["frame"]
    for q in range(lay.length):
        for k in range(lay.length):
            if seg[q] > 0 and seg[k] > 0:
                if fr[k] > fr[q]:
                    assert not m[q, k], "a frame must never see a later one"
            if seg[q] == 2 and seg[k] == 2 and fr[q] != fr[k]:
                assert not m[q, k], "noisy frames see only themselves among noisy frames"
            if seg[q] == 2 and seg[k] == 1:
                assert m[q, k] == (fr[k] < fr[q]), "noisy frame f sees clean frames < f"
            if seg[q] == 1 and seg[k] == 1:
                assert m[q, k] == (fr[k] <= fr[q])
            if seg[q] == 0:
                assert m[q, k] == (seg[k] == 0), "text sees only text"
            if seg[q] > 0 and seg[k] == 0:
                assert m[q, k]


def test_engine_layout_sees_whole_cache():
    lay = Layout(text_len=0, audio_tokens=0, grid=(1, 1), clean_frames=4, noisy_frames=1, noisy_frame_offset=4)
    m = lay.attention_mask()
    assert m[-1].all()  # the frame being generated sees every cached frame and itself
