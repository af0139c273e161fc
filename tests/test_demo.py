from mmsd import cli, codec


def test_demo_writes_a_side_by_side_video_with_sound_and_a_png(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--model", "not-shipped", "--crf", "40"]) == 0
    printed = capsys.readouterr().out
    assert "Bicubic: face PSNR" in printed and "not shipped yet" in printed
    original, side = codec.probe(out / "original.mp4"), codec.probe(out / "side_by_side.mp4")
    assert (original.width, original.height) == (480, 288)
    assert (side.width, side.height) == (2 * 480, 288)  # Bicubic | Original
    assert side.has_audio and side.num_frames == original.num_frames
    low = codec.probe(out / "low.mp4")
    assert (low.width, low.height) == (120, 72) and '"emotion":[[0,4]]' in low.metadata["comment"]
    assert (out / "frames.png").stat().st_size > 0
