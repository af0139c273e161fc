from mmsd import cli
from mmsd.media import codec
from mmsd.models import build_model, weights


def test_demo_writes_a_side_by_side_video_with_sound_and_a_png(tmp_path, capsys):
    config = {"radius": 1, "causal": False, "scale": 4}  # a weights file quick to run: its column is "tiny"
    model = tmp_path / "tiny.safetensors"
    weights.save_model(model, name="bicubic", config=config, state=build_model("bicubic", config).state_dict())
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--model", str(model), "--crf", "40"]) == 0
    printed = capsys.readouterr().out
    assert "Bicubic: face PSNR" in printed and "tiny: face PSNR" in printed
    original, side = codec.probe(out / "original.mp4"), codec.probe(out / "side_by_side.mp4")
    assert (original.width, original.height) == (480, 288)
    assert (side.width, side.height) == (3 * 480, 288)  # Bicubic | tiny | Original
    assert side.has_audio and side.num_frames == original.num_frames
    low = codec.probe(out / "low.mp4")
    assert (low.width, low.height) == (120, 72) and '"emotion":[[0,4]]' in low.metadata["comment"]
    assert (out / "frames.png").stat().st_size > 0


def test_demo_never_drops_a_column_silently(tmp_path, capsys):
    """A model it should show but cannot find: one line, a non-zero exit, and nothing half done."""
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--model", "not-shipped"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mmsd demo: error: model 'not-shipped' is missing"), err
    assert "available: bicubic, " in err[0] and "mmsd" in err[0].split("available:")[1]
    assert captured.out == "" and not out.exists()
