"""MMSD-Net (Fig. 2): video, audio and emotion branches, two fusions, reconstruction.

    lr (B,T,3,H,W) --VideoBranch--> f_V ---------------AudioVideoFusion (eq. 2-3)--> f_VA
    mfcc (B,T,K,M) --AudioBranch--> f_A --------------/                              |
    emotion s, f_V --AUGenerator (eq. 4)--> AU --AUAttention--> w_VA --EmotionFusion (eq. 5)--> f_VAE
    f_VAE, lr[:, ref] --Reconstruction--> image (B,3,4H,4W)

Switches: `cfg.audio` / `cfg.emotion` off removes the branch (its modules are not built and
its inputs are ignored): f_VA = f_V, f_VAE = f_VA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsd.emotions import NUM_STATES
from mmsd.models.alignment import VideoBranch
from mmsd.models.audio import AudioBranch
from mmsd.models.config import MMSDConfig
from mmsd.models.emotion import AUAttention, AUGenerator
from mmsd.models.fusion import AudioVideoFusion, EmotionFusion
from mmsd.models.output import RestorationOutput
from mmsd.models.reconstruction import Reconstruction


@dataclass
class MMSDOutput(RestorationOutput):
    """What MMSD-Net returns (a RestorationOutput, like every restoration model here).

    image: Tensor[B, 3, 4H, 4W], the restored reference frame (not clamped).
    au: Tensor[B, 17] predicted AU intensities, or None when the emotion branch is off.
    offset_abs_mean: scalar Tensor, mean |offset| of the alignment in LR pixels (watch it:
        EDVR's failure mode is this blowing up past ~100), or None when T = 1.
    audio_attention: Tensor[B, 1, H, W], the w of eq. 2, or None when the audio branch is off.
    """

    audio_attention: Tensor | None = None


class MMSDNet(nn.Module):
    """G(lr window, audio window, emotion state) -> restored reference frame (eq. 1)."""

    def __init__(self, cfg: MMSDConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.video = VideoBranch(
            channels=c, num_frames=cfg.num_frames, reference_index=cfg.reference_index,
            extract_blocks=cfg.extract_blocks, deform_groups=cfg.deform_groups, trunk_blocks=cfg.trunk_blocks,
        )
        if cfg.audio:
            self.audio = AudioBranch(n_mfcc=cfg.n_mfcc, hidden=cfg.audio_hidden, layers=cfg.audio_layers,
                                     map_channels=cfg.audio_map_channels)
            self.av_fusion = AudioVideoFusion(video_channels=c, audio_channels=cfg.audio_map_channels,
                                              embed_channels=cfg.attention_channels)
        if cfg.emotion:
            self.au_generator = AUGenerator(channels=c, num_states=NUM_STATES, hidden=cfg.au_hidden,
                                            dropout=cfg.au_dropout)
            self.au_attention = AUAttention(channels=c, hidden=cfg.emotion_hidden)
            self.emotion_fusion = EmotionFusion(channels=c, num_states=NUM_STATES)
        self.reconstruction = Reconstruction(channels=c, num_blocks=cfg.recon_blocks,
                                             upsample_channels=cfg.upsample_channels)

    def forward(self, lr: Tensor, mfcc: Tensor | None = None, emotion: Tensor | None = None,
                *, crop: Tensor | None = None, frame_features: Tensor | None = None,
                video_features: Tensor | None = None, pooled: Tensor | None = None) -> MMSDOutput:
        """lr (Tensor[B, T, 3, H, W]) in [0, 1]; mfcc (Tensor[B, T, K, M]), needed when cfg.audio;
        emotion (Tensor[B] long, 0..14), needed when cfg.emotion; crop (Tensor[B, 4] or None):
        for a crop, its (x0, y0, x1, y1) as fractions of the full frame, so f_A is cut to match;
        frame_features (Tensor[B, T, C, H, W] or None): `frame_features` of every frame of lr, if
        already computed (streaming inference reuses them across overlapping windows);
        video_features (Tensor[B, C, H, W] or None): f_V of this window (`video_features`), if already
        computed; pooled (Tensor[B, C] or None): the mean of f_V the AU generator reads, if not lr's own
        (tiled inference passes the whole frame's mean to every tile)."""
        self._check_inputs(lr, mfcc, emotion)
        b, _, _, h, w = lr.shape
        # 1. video branch: per-frame features, deformable alignment to the reference, fusion -> f_V
        offset_abs_mean = None
        if video_features is None:
            f_v, offset_abs_mean = self.video(lr, frame_features)  # (B, C, H, W)
        else:
            f_v = video_features
        f = f_v
        attention = au = None
        # 2. audio branch: MFCC window -> BiLSTM -> FC -> upsampling -> f_A  (B, C_A, H, W)
        # 3. audio-video attention fusion (eq. 2-3) -> f_VA
        if self.cfg.audio:
            f_a = self.audio(mfcc, (h, w), crop)
            f, attention = self.av_fusion(f, f_a)
        # 4. emotion: AU generator (eq. 4) -> channel attention w_VA -> emotion fusion (eq. 5) -> f_VAE
        if self.cfg.emotion:
            s = F.one_hot(emotion.long(), NUM_STATES).to(lr.dtype)  # (B, 15)
            au = self.au_generator(f_v.detach() if self.cfg.au_stop_gradient else f_v, s, pooled)
            f = self.emotion_fusion(f, self.au_attention(au), s)
        # 5. reconstruction: residual blocks, x4 pixel shuffle, + bicubic(reference frame)
        image = self.reconstruction(f, lr[:, self.cfg.reference_index])
        return MMSDOutput(image=image, au=au, offset_abs_mean=offset_abs_mean, audio_attention=attention)

    def frame_features(self, frames: Tensor) -> Tensor:
        """frames (Tensor[N, 3, H, W]) in [0, 1] -> per-frame features (Tensor[N, C, H, W]), what
        `forward` computes for each frame of a window before aligning them."""
        return self.video.extract(frames)

    def video_features(self, lr: Tensor, frame_features: Tensor | None = None) -> Tensor:
        """lr (Tensor[B, T, 3, H, W]), frame_features as in `forward` -> f_V (Tensor[B, C, H, W]),
        stage 1 of `forward`."""
        return self.video(lr, frame_features)[0]

    def _check_inputs(self, lr: Tensor, mfcc: Tensor | None, emotion: Tensor | None) -> None:
        cfg = self.cfg
        if lr.dim() != 5 or lr.shape[1] != cfg.num_frames or lr.shape[2] != 3:
            raise ValueError(f"expected lr (B, {cfg.num_frames}, 3, H, W) for 2N+1={cfg.num_frames} frames, "
                             f"got {tuple(lr.shape)}")
        b = lr.shape[0]
        if cfg.audio:
            want = (b, cfg.num_frames, cfg.mfcc_per_frame, cfg.n_mfcc)
            if mfcc is None or tuple(mfcc.shape) != want:
                got = None if mfcc is None else tuple(mfcc.shape)
                raise ValueError(f"audio branch is on: expected mfcc of shape {want} (B, T, K, M), got {got}")
        if cfg.emotion:
            if emotion is None or tuple(emotion.shape) != (b,):
                got = None if emotion is None else tuple(emotion.shape)
                raise ValueError(f"emotion branch is on: expected emotion ids of shape ({b},), got {got}")
            # an exported graph cannot branch on values: there the caller vouches for the range
            out_of_range = not torch.compiler.is_exporting() and (emotion.min() < 0 or emotion.max() >= NUM_STATES)
            if emotion.is_floating_point() or out_of_range:
                raise ValueError(f"emotion ids must be integers in 0..{NUM_STATES - 1}, got {emotion.tolist()}")

    def offset_parameters(self) -> list[nn.Parameter]:
        """The parameters predicting deformable offsets and masks (give them a lower lr)."""
        return self.video.align.offset_parameters()


def param_groups(model: MMSDNet, lr: float, offset_lr_scale: float = 0.1) -> list[dict]:
    """Optimizer groups: everything at `lr`, the offset predictors at lr * offset_lr_scale (EDVR's guard)."""
    offset_ids = {id(p) for p in model.offset_parameters()}
    return [
        {"params": [p for p in model.parameters() if id(p) not in offset_ids], "lr": lr},
        {"params": model.offset_parameters(), "lr": lr * offset_lr_scale},
    ]
