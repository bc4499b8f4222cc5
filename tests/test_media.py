"""Video files through PyAV: uniform frame sampling, bad files, ``focus run --video``."""

import av
import numpy as np
import pytest
from click.testing import CliRunner

from focus_algo.cli import main
from focus_algo.media import MediaError, read_video
from focus_algo.trace import SparseTrace
from focus_algo.workload import video_workload


def colour(i: int) -> np.ndarray:
    """Frame ``i``'s solid RGB colour: 20 levels apart, far beyond codec error."""
    return np.array([20 * i, 255 - 20 * i, 128], np.uint8)


def write_video(path, count=12, codec="libx264", size=(32, 24), **options):
    """A video of ``count`` solid frames, frame i in :func:`colour` (i)."""
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=8)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(count):
            rgb = np.broadcast_to(colour(i), (size[1], size[0], 3)).copy()
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


def frame_indices(video: np.ndarray, count=12) -> list[int]:
    """Which frame of :func:`write_video` each frame shows (nearest colour)."""
    palette = np.stack([colour(i) for i in range(count)]).astype(float)
    means = video.reshape(len(video), -1, 3).mean(axis=1)
    assert np.abs(means[:, None] - video.reshape(len(video), -1, 3)).max() < 8  # solid
    dist = np.abs(means[:, None, :] - palette[None]).max(axis=-1)
    assert (dist.min(axis=1) < 6).all(), dist.min(axis=1)
    return dist.argmin(axis=1).tolist()


@pytest.mark.parametrize(
    "name, codec", [("clip.mp4", "libx264"), ("clip.mkv", "libx264"), ("clip.avi", "mpeg4")]
)
def test_uniform_sampling(tmp_path, name, codec):
    """.mkv and .avi carry no frame count: the packets are counted instead."""
    path = write_video(tmp_path / name, codec=codec)
    video = read_video(path, 4)
    assert video.shape == (4, 24, 32, 3) and video.dtype == np.uint8
    assert frame_indices(video) == [0, 4, 7, 11]  # round(linspace(0, 11, 4))
    assert frame_indices(read_video(path)) == list(range(12))
    assert frame_indices(read_video(path, 50)) == list(range(12))


def test_header_that_overcounts(tmp_path):
    """A truncated file whose header counts 12 frames: sampled over those it holds."""
    path = write_video(tmp_path / "a.mp4", count=12, movflags="faststart")
    with av.open(str(path)) as container:
        cut = [p.pos for p in container.demux() if p.size][8]  # a packet boundary
    (tmp_path / "cut.mp4").write_bytes(path.read_bytes()[:cut])
    with av.open(str(tmp_path / "cut.mp4")) as container:
        assert container.streams.video[0].frames == 12
    video = read_video(tmp_path / "cut.mp4", 3)
    assert len(video) == 3 and frame_indices(video)[0] == 0


def test_bad_files(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        read_video(tmp_path / "none.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00junk" * 200)
    with pytest.raises(MediaError, match=r"junk\.mp4: cannot read video"):
        read_video(tmp_path / "junk.mp4")
    with av.open(str(tmp_path / "tone.wav"), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        tone = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        tone.sample_rate = 8000
        container.mux(stream.encode(tone))
        container.mux(stream.encode())
    with pytest.raises(MediaError, match=r"tone\.wav: holds no video stream"):
        read_video(tmp_path / "tone.wav")


# -- focus run / flow --video -------------------------------------------------------

TINY = ["--height", "2", "--width", "2", "--hidden", "32", "--ffn", "64", "--heads", "2"]
TINY += ["--kv-groups", "1", "--layers", "1"]


def test_workload_frames_come_from_the_file(tmp_path):
    path = write_video(tmp_path / "clip.mp4")
    wl = video_workload(frames=4, height=2, width=3, hidden=32, heads=2, kv_groups=1, video=path)
    video = wl.video()
    assert video.shape == (4, 2 * 14, 3 * 14, 3) and wl.shape.name == "clip.mp4"
    assert frame_indices((video * 255).round().astype(np.uint8)) == [0, 4, 7, 11]
    assert wl.clips == []


def test_run_video(tmp_path):
    path = write_video(tmp_path / "clip.mp4")
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main, ["run", *TINY, "--frames", "4", "--video", str(path), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    meta = SparseTrace.load(out / "trace.safetensors").meta
    assert meta.dataset == "clip.mp4" and meta.extra["video"] == str(path)
    assert (meta.frames, meta.height, meta.width) == (4, 2, 2) and meta.extra["clips"] == []


@pytest.mark.parametrize("command", ["run", "flow"])
def test_bad_video_exit_2(tmp_path, command):
    clip = write_video(tmp_path / "clip.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00junk" * 200)
    out = tmp_path / "out"
    for args, text in [
        (["--video", str(tmp_path / "none.mp4")], "none.mp4' does not exist"),
        (["--video", str(tmp_path / "junk.mp4")], "junk.mp4: cannot read video"),
        (["--video", str(clip), "--frames", "13"], "--frames=13: video"),
    ]:
        res = CliRunner().invoke(main, [command, *TINY, *args, "--out", str(out)])
        assert res.exit_code == 2, res.output
        errors = [line for line in res.output.splitlines() if line.startswith("Error")]
        assert len(errors) == 1 and text in errors[0], res.output
    assert not out.exists()
