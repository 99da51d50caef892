"""DensePose R-CNN (chart / IUV models) inference in plain PyTorch, without detectron2.

Pipeline (numerically following detectron2's ``DefaultPredictor`` on a ``GeneralizedRCNN`` with
``DensePoseROIHeads``):

  BGR uint8 image -> ResizeShortestEdge(800, max 1333) with PIL bilinear on uint8 -> float CHW,
  (x - mean) / std, zero-pad to a multiple of 32 -> ResNet (FrozenBN, stride in 1x1) -> FPN
  (+ max-pool P6) -> RPN (anchors, per-level top-k, NMS) -> box head (ROIAlign 7x7, 2 FC) ->
  softmax, decode, clip, score threshold, per-class NMS, top detections -> DensePose decoder on
  P2..P5 -> ROIAlign 28x28 -> V1ConvX or DeepLab head -> chart predictor (deconv + bilinear x2)
  -> boxes scaled back to the original image -> per-box IUV (see ``convert.py``).

Weights are a name -> tensor dict validated by ``weights.validate_state``; every width comes from
the checkpoint, so the tiny golden model and the real R50-FPN checkpoints share this code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import ops
from .convert import chart_to_iuv, make_int_box_xywh
from .weights import DECODER_CONVS, DECODER_LEVELS, DL_ATROUS_RATES, ArchSpec

FROZEN_BN_EPS = 1e-5
GROUP_NORM_GROUPS = 32
GROUP_NORM_EPS = 1e-5


@dataclass(frozen=True)
class DensePoseConfig:
    """Test-time settings that are not stored in a checkpoint (defaults: detectron2's DensePose
    R-CNN FPN configs, ``Base-DensePose-RCNN-FPN.yaml``)."""

    min_size: int = 800
    max_size: int = 1333
    size_divisibility: int = 32
    pixel_mean_bgr: tuple[float, float, float] = (103.53, 116.28, 123.675)
    pixel_std_bgr: tuple[float, float, float] = (1.0, 1.0, 1.0)
    anchor_sizes: tuple[float, ...] = (32, 64, 128, 256, 512)
    anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    anchor_offset: float = 0.0
    rpn_pre_nms_topk: int = 1000
    rpn_post_nms_topk: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_min_box_size: float = 0.0
    box_sampling_ratio: int = 2
    box_aligned: bool = False  # POOLER_TYPE "ROIAlign"; "ROIAlignV2" means aligned=True
    bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_image: int = 100
    dp_pooler_resolution: int = 28
    dp_sampling_ratio: int = 2
    dp_aligned: bool = False
    up_scale: int = 2
    scale_clamp: float = math.log(1000.0 / 16)


@dataclass(frozen=True)
class DensePoseResult:
    """DensePose output for one image (original image pixels).

    boxes_xyxy: (N, 4) float32; scores: (N,) float32, decreasing; classes: (N,) int64 (0 = person).
    boxes_xywh_int: (N, 4) int64, the integer box (x, y, w, h) each IUV patch covers
      (truncated like detectron2; a patch is max(h,1) x max(w,1) pixels with top-left (x, y)).
    labels[i]: (h_i, w_i) uint8 body-part index 0..24 (0 = background).
    uv[i]: (2, h_i, w_i) float32 chart coordinates U, V (0 where the label is 0).
    image_hw: (H, W) of the input image.
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    boxes_xywh_int: np.ndarray
    labels: tuple
    uv: tuple
    image_hw: tuple[int, int]

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def resized_size(h: int, w: int, short: int, max_size: int) -> tuple[int, int]:
    """detectron2 ``ResizeShortestEdge.get_output_shape``: returns (new_h, new_w)."""
    size = short * 1.0
    scale = size / min(h, w)
    if h < w:
        newh, neww = size, scale * w
    else:
        newh, neww = scale * h, size
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh = newh * scale
        neww = neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def resize_bgr(image: np.ndarray, short: int, max_size: int) -> np.ndarray:
    """Resize a uint8 (H, W, 3) image like detectron2 at test time (PIL bilinear on uint8)."""
    h, w = image.shape[:2]
    nh, nw = resized_size(h, w, short, max_size)
    pil = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(pil.resize((nw, nh), Image.BILINEAR))


def _check_image(img) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError("expected a BGR uint8 image of shape (H, W, 3)")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError("empty image")
    return img


class DensePoseModel:
    """A loaded DensePose R-CNN chart model. Build it with :func:`core.observe.densepose.load_densepose`.

    ``predict(images_bgr)`` takes BGR uint8 ``(H, W, 3)`` images (OpenCV order, as detectron2's
    DefaultPredictor; convert RGB frames with ``frame[..., ::-1]``) and returns one
    :class:`DensePoseResult` per image. Images whose resized shapes agree are run as one batch
    (equal results to running them one by one); others are run separately.
    """

    def __init__(self, state: dict, arch: ArchSpec, config: DensePoseConfig = DensePoseConfig(),
                 device: str | torch.device = "cpu"):
        self.arch = arch
        self.config = config
        self.device = torch.device(device)
        self.w = {k: torch.as_tensor(np.asarray(v), dtype=torch.float32).to(self.device) for k, v in state.items()}
        # Dense maps run in channels-last memory format (oneDNN's fast layout on CPU, notably for
        # the many 1x1 convolutions); 4-D weights are stored the same way (values unchanged).
        for k, v in self.w.items():
            if v.dim() == 4:
                self.w[k] = v.contiguous(memory_format=torch.channels_last)
        self._bn = {}  # FrozenBN as per-channel (scale, bias), computed once
        for k in list(self.w):
            if k.endswith(".norm.running_var"):
                base = k[: -len(".running_var")]
                scale = self.w[base + ".weight"] * (self.w[base + ".running_var"] + FROZEN_BN_EPS).rsqrt()
                bias = self.w[base + ".bias"] - self.w[base + ".running_mean"] * scale
                self._bn[base] = (scale.view(1, -1, 1, 1), bias.view(1, -1, 1, 1))
        self.pixel_mean = torch.tensor(config.pixel_mean_bgr, dtype=torch.float32, device=self.device).view(3, 1, 1)
        self.pixel_std = torch.tensor(config.pixel_std_bgr, dtype=torch.float32, device=self.device).view(3, 1, 1)
        self.cell_anchors = [
            ops.cell_anchors([s], config.anchor_aspect_ratios).to(self.device) for s in config.anchor_sizes
        ]
        self._anchor_cache: dict = {}

    # ------------------------------------------------------------------------------------------
    # layers
    # ------------------------------------------------------------------------------------------
    def _conv(self, x, name, stride=1, padding=0, dilation=1, bias=True):
        b = self.w.get(name + ".bias") if bias else None
        return F.conv2d(x, self.w[name + ".weight"], b, stride, padding, dilation)

    def _conv_bn(self, x, name, stride=1, padding=0, relu=True):
        x = F.conv2d(x, self.w[name + ".weight"], None, stride, padding)
        scale, bias = self._bn[name + ".norm"]
        # FrozenBN: x * scale + bias, in place on the fresh conv output. Neither folded into the
        # conv weights nor fused as addcmul (FMA): both change the rounding enough for the tiny
        # golden model to leave the parity tolerances (near-tied RPN logits swap order).
        x = x.mul_(scale).add_(bias)
        return F.relu_(x) if relu else x

    def _gn(self, x, name):
        return F.group_norm(x, GROUP_NORM_GROUPS, self.w[name + ".weight"], self.w[name + ".bias"], GROUP_NORM_EPS)

    def backbone(self, x: torch.Tensor) -> dict:
        """ResNet bottom-up: returns res2..res5."""
        a = self.arch
        bu = "backbone.bottom_up."
        x = self._conv_bn(x, bu + "stem.conv1", stride=2, padding=3)
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        out = {}
        for k, nb in zip(range(2, 6), a.stage_blocks):
            for i in range(nb):
                p = f"{bu}res{k}.{i}."
                stride = 2 if (i == 0 and k > 2) else 1
                if p + "shortcut.weight" in self.w:
                    short = self._conv_bn(x, p + "shortcut", stride=stride, relu=False)
                else:
                    short = x
                y = self._conv_bn(x, p + "conv1", stride=stride)  # STRIDE_IN_1X1
                y = self._conv_bn(y, p + "conv2", padding=1)
                y = self._conv_bn(y, p + "conv3", relu=False)
                y += short
                x = F.relu_(y)
            out[f"res{k}"] = x
        return out

    def fpn(self, res: dict) -> list:
        """FPN top-down with nearest x2 upsampling and sum fusion; returns [p2, p3, p4, p5, p6]."""
        prev = self._conv(res["res5"], "backbone.fpn_lateral5")
        outs = [self._conv(prev, "backbone.fpn_output5", padding=1)]
        for k in (4, 3, 2):
            top_down = F.interpolate(prev, scale_factor=2.0, mode="nearest")
            prev = self._conv(res[f"res{k}"], f"backbone.fpn_lateral{k}").add_(top_down)
            outs.insert(0, self._conv(prev, f"backbone.fpn_output{k}", padding=1))
        outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2, padding=0))
        return outs

    def rpn_head(self, feats: list) -> tuple[list, list]:
        logits, deltas = [], []
        for f in feats:
            t = F.relu_(self._conv(f, "proposal_generator.rpn_head.conv", padding=1))
            logits.append(self._conv(t, "proposal_generator.rpn_head.objectness_logits"))
            deltas.append(self._conv(t, "proposal_generator.rpn_head.anchor_deltas"))
        return logits, deltas

    def anchors(self, level: int, h: int, w: int) -> torch.Tensor:
        key = (level, h, w)
        if key not in self._anchor_cache:
            stride = 2 ** (level + 2)
            self._anchor_cache[key] = ops.grid_anchors(self.cell_anchors[level], h, w, stride, self.config.anchor_offset)
        return self._anchor_cache[key]

    def box_head(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = pooled.flatten(1)
        for i in range(len(self.arch.box_fc_dims)):
            n = f"roi_heads.box_head.fc{i + 1}"
            x = F.relu_(F.linear(x, self.w[n + ".weight"], self.w[n + ".bias"]))
        p = "roi_heads.box_predictor."
        cls = F.linear(x, self.w[p + "cls_score.weight"], self.w[p + "cls_score.bias"])
        deltas = F.linear(x, self.w[p + "bbox_pred.weight"], self.w[p + "bbox_pred.bias"])
        return cls, deltas

    def decoder(self, feats: list) -> torch.Tensor:
        """Panoptic-FPN style decoder on p2..p5 -> one stride-4 map."""
        x = None
        for lvl_i, lvl in enumerate(DECODER_LEVELS):
            y = feats[lvl_i]
            for j in range(DECODER_CONVS[lvl]):
                idx = j if lvl == "p2" else 2 * j
                y = F.relu_(self._conv(y, f"roi_heads.decoder.{lvl}.{idx}", padding=1))
                if lvl != "p2":
                    y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            x = y if x is None else x.add_(y)  # fresh tensors: in place, same values
        return self._conv(x, "roi_heads.decoder.predictor")

    def densepose_head(self, x: torch.Tensor) -> torch.Tensor:
        a = self.arch
        dh = "roi_heads.densepose_head."
        k = a.head_kernel
        if a.head == "v1convx":
            for i in range(a.head_convs):
                x = F.relu_(self._conv(x, f"{dh}body_conv_fcn{i + 1}", padding=k // 2))
            return x
        # DeepLab head: ASPP (1x1, three atrous 3x3, image pooling) -> [non-local] -> GN convs
        branches = [F.relu_(self._gn(self._conv(x, dh + "ASPP.convs.0.0", bias=False), dh + "ASPP.convs.0.1"))]
        for j, rate in zip((1, 2, 3), DL_ATROUS_RATES):
            y = self._conv(x, f"{dh}ASPP.convs.{j}.0", padding=rate, dilation=rate, bias=False)
            branches.append(F.relu_(self._gn(y, f"{dh}ASPP.convs.{j}.1")))
        pooled = F.adaptive_avg_pool2d(x, 1)
        pooled = F.relu_(self._gn(self._conv(pooled, dh + "ASPP.convs.4.1", bias=False), dh + "ASPP.convs.4.2"))
        branches.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False))
        x = F.relu_(self._conv(torch.cat(branches, dim=1), dh + "ASPP.project.0", bias=False))
        if a.nonlocal_on:
            x = self._nonlocal(x, dh + "NLBlock.")
        for i in range(a.head_convs):
            n = f"{dh}body_conv_fcn{i + 1}"
            x = F.relu_(self._gn(self._conv(x, n, padding=k // 2, bias=False), n + ".norm"))
        return x

    def _nonlocal(self, x: torch.Tensor, p: str) -> torch.Tensor:
        """Embedded-Gaussian non-local block (2-D, sub-sampled g/phi, GroupNorm on W)."""
        n, c = x.shape[:2]
        g = F.max_pool2d(self._conv(x, p + "g.0"), 2)
        theta = self._conv(x, p + "theta")
        phi = F.max_pool2d(self._conv(x, p + "phi.0"), 2)
        inter = theta.shape[1]
        g_x = g.view(n, inter, -1).permute(0, 2, 1)
        theta_x = theta.view(n, inter, -1).permute(0, 2, 1)
        phi_x = phi.view(n, inter, -1)
        f = torch.softmax(torch.matmul(theta_x, phi_x), dim=-1)
        y = torch.matmul(f, g_x).permute(0, 2, 1).contiguous().view(n, inter, *x.shape[2:])
        return self._gn(self._conv(y, p + "W.0"), p + "W.1") + x

    def predictor(self, x: torch.Tensor) -> dict:
        p = "roi_heads.densepose_predictor."
        k = self.arch.deconv_kernel
        out = {}
        for key, name in (("coarse_segm", "ann_index_lowres"), ("fine_segm", "index_uv_lowres"),
                          ("u", "u_lowres"), ("v", "v_lowres")):
            y = F.conv_transpose2d(x, self.w[p + name + ".weight"], self.w[p + name + ".bias"],
                                   stride=2, padding=k // 2 - 1)
            out[key] = F.interpolate(y, scale_factor=self.config.up_scale, mode="bilinear", align_corners=False)
        return out

    # ------------------------------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------------------------------
    def preprocess(self, images_bgr: Sequence[np.ndarray]) -> tuple[torch.Tensor, list, list]:
        """Resize, normalise and pad a batch. Returns (tensor (B,3,Hp,Wp), resized uint8 list, sizes)."""
        c = self.config
        resized = [resize_bgr(_check_image(im), c.min_size, c.max_size) for im in images_bgr]
        sizes = [r.shape[:2] for r in resized]
        d = c.size_divisibility
        hp = max(s[0] for s in sizes)
        wp = max(s[1] for s in sizes)
        if d > 1:
            hp = (hp + d - 1) // d * d
            wp = (wp + d - 1) // d * d
        # (B, 3, Hp, Wp) with channels-last strides: the whole network then runs channels-last
        batch = torch.zeros((len(resized), hp, wp, 3), dtype=torch.float32, device=self.device).permute(0, 3, 1, 2)
        for i, r in enumerate(resized):
            t = torch.from_numpy(np.ascontiguousarray(r.astype(np.float32).transpose(2, 0, 1))).to(self.device)
            batch[i, :, : r.shape[0], : r.shape[1]] = (t - self.pixel_mean) / self.pixel_std
        return batch, resized, sizes

    def proposals(self, logits: list, deltas: list, n: int, image_hw) -> tuple[torch.Tensor, torch.Tensor]:
        """RPN proposals for image ``n`` of the batch: (boxes (P,4), objectness logits (P,))."""
        c = self.config
        boxes_l, scores_l, lvl_l = [], [], []
        for li, (lg, dl) in enumerate(zip(logits, deltas)):
            h, w = lg.shape[-2:]
            a = lg.shape[1]
            score = lg[n].permute(1, 2, 0).reshape(-1)
            delta = dl[n].view(a, 4, h, w).permute(2, 3, 0, 1).reshape(-1, 4)
            k = min(score.numel(), c.rpn_pre_nms_topk)
            top_s, top_i = score.topk(k)
            anchors = self.anchors(li, h, w)
            boxes = ops.apply_deltas(delta[top_i], anchors[top_i], (1.0, 1.0, 1.0, 1.0), c.scale_clamp)
            boxes_l.append(boxes)
            scores_l.append(top_s)
            lvl_l.append(torch.full((k,), li, dtype=torch.int64, device=self.device))
        boxes = torch.cat(boxes_l)
        scores = torch.cat(scores_l)
        lvl = torch.cat(lvl_l)
        valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores)
        if not bool(valid.all()):
            boxes, scores, lvl = boxes[valid], scores[valid], lvl[valid]
        boxes = ops.clip_boxes(boxes, image_hw[0], image_hw[1])
        keep = ops.nonempty(boxes, c.rpn_min_box_size)
        if not bool(keep.all()):
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
        keep = ops.batched_nms(boxes, scores, lvl, c.rpn_nms_thresh)[: c.rpn_post_nms_topk]
        return boxes[keep], scores[keep]

    def detect(self, cls_logits, box_deltas, proposals, image_hw):
        """Fast R-CNN inference for one image -> (boxes (N,4), scores (N,), classes (N,))."""
        c = self.config
        boxes = ops.apply_deltas(box_deltas, proposals, c.bbox_reg_weights, c.scale_clamp)
        scores = F.softmax(cls_logits, dim=-1)
        valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
        if not bool(valid.all()):
            boxes, scores = boxes[valid], scores[valid]
        scores = scores[:, :-1]
        ncls = boxes.shape[1] // 4
        boxes = ops.clip_boxes(boxes.reshape(-1, 4), image_hw[0], image_hw[1]).view(-1, ncls, 4)
        mask = scores > c.score_thresh
        inds = mask.nonzero()
        boxes = boxes[inds[:, 0], 0] if ncls == 1 else boxes[mask]
        scores = scores[mask]
        keep = ops.batched_nms(boxes, scores, inds[:, 1], c.nms_thresh)
        if c.detections_per_image >= 0:
            keep = keep[: c.detections_per_image]
        return boxes[keep], scores[keep], inds[keep][:, 1]

    @torch.inference_mode()
    def _run_batch(self, images_bgr: Sequence[np.ndarray], trace: Optional[dict] = None) -> list:
        c = self.config
        x, resized, sizes = self.preprocess(images_bgr)
        if trace is not None:
            trace["resized_bgr"] = resized
            trace["input_tensor"] = x
        res = self.backbone(x)
        feats = self.fpn(res)
        logits, deltas = self.rpn_head(feats)
        # the DensePose decoder (a quarter of the dense compute) only feeds the DensePose ROIAlign:
        # computed on first need, so a batch without detections skips it
        dec = self.decoder(feats[:4]) if (self.arch.decoder_on and trace is not None) else None
        if trace is not None:
            trace.update({k: v for k, v in res.items()})
            trace.update({f"p{i + 2}": f for i, f in enumerate(feats)})
            trace["decoder_out"] = dec
            trace["rpn_logits"] = logits
            trace["rpn_deltas"] = deltas
            trace["rpn_anchors"] = [self.anchors(i, *lg.shape[-2:]) for i, lg in enumerate(logits)]
            trace["images"] = []
        box_scales = [1.0 / 2 ** (i + 2) for i in range(4)]
        results = []
        for n, img in enumerate(images_bgr):
            hw = sizes[n]
            props, prop_logits = self.proposals(logits, deltas, n, hw)
            bidx = torch.zeros((props.shape[0],), device=self.device)
            pooled = ops.multilevel_roi_align(
                [f[n: n + 1] for f in feats[:4]], props, bidx, self.arch.box_pool, box_scales,
                c.box_sampling_ratio, c.box_aligned,
            )
            cls_logits, box_deltas = self.box_head(pooled)
            boxes, scores, classes = self.detect(cls_logits, box_deltas, props, hw)
            if self.arch.decoder_on and dec is None and boxes.shape[0]:
                dec = self.decoder(feats[:4])
            if self.arch.decoder_on and dec is None:  # no detections (and no decoder run): empty
                r = c.dp_pooler_resolution
                dp_pooled = torch.zeros((0, self.w["roi_heads.decoder.predictor.weight"].shape[0], r, r),
                                        device=self.device)
            else:
                if self.arch.decoder_on:
                    dp_feats, dp_scales = [dec[n: n + 1]], [0.25]
                else:
                    dp_feats, dp_scales = [f[n: n + 1] for f in feats[:4]], box_scales
                dp_pooled = ops.multilevel_roi_align(
                    dp_feats, boxes, torch.zeros((boxes.shape[0],), device=self.device), c.dp_pooler_resolution,
                    dp_scales, c.dp_sampling_ratio, c.dp_aligned,
                )
            if boxes.shape[0]:
                head = self.densepose_head(dp_pooled)
                pred = self.predictor(head)
            else:
                head = None
                pred = None
            # detector_postprocess: back to original pixels, clip, drop empty boxes
            oh, ow = img.shape[:2]
            boxes_orig = boxes.clone()
            boxes_orig[:, 0::2] *= ow / hw[1]
            boxes_orig[:, 1::2] *= oh / hw[0]
            boxes_orig = ops.clip_boxes(boxes_orig, oh, ow)
            keep = ops.nonempty(boxes_orig)
            boxes_orig, scores_k, classes_k = boxes_orig[keep], scores[keep], classes[keep]
            xywh = make_int_box_xywh(boxes_orig)
            labels, uvs = [], []
            if pred is not None:
                kept = torch.nonzero(keep).view(-1).tolist()
                for j, i in enumerate(kept):
                    lab, uv = chart_to_iuv(pred["coarse_segm"][i: i + 1], pred["fine_segm"][i: i + 1],
                                           pred["u"][i: i + 1], pred["v"][i: i + 1], xywh[j].tolist())
                    labels.append(lab)
                    uvs.append(uv)
            if trace is not None:
                trace["images"].append(dict(
                    resized_hw=hw, proposals=props, proposal_logits=prop_logits, box_pooled=pooled,
                    cls_logits=cls_logits, box_deltas=box_deltas, det_boxes_resized=boxes, det_scores=scores,
                    det_classes=classes, dp_pooled=dp_pooled, dp_head=head, dp_pred=pred,
                    det_boxes=boxes_orig, keep=keep,
                ))
            results.append(DensePoseResult(
                boxes_xyxy=boxes_orig.cpu().numpy().astype(np.float32),
                scores=scores_k.cpu().numpy().astype(np.float32),
                classes=classes_k.cpu().numpy().astype(np.int64),
                boxes_xywh_int=xywh.cpu().numpy().astype(np.int64),
                labels=tuple(labels), uv=tuple(uvs), image_hw=(int(oh), int(ow)),
            ))
        return results

    def predict(self, images_bgr: Sequence[np.ndarray] | np.ndarray, batch_size: int = 4,
                trace: Optional[dict] = None) -> list:
        """Run DensePose on BGR uint8 images; one :class:`DensePoseResult` per image, in order.

        ``trace`` (optional dict) receives intermediate tensors (only with a single image or a
        single batch; for tests and debugging).
        """
        if isinstance(images_bgr, np.ndarray) and images_bgr.ndim == 3:
            images_bgr = [images_bgr]
        images = [_check_image(im) for im in images_bgr]
        c = self.config
        out: list = [None] * len(images)
        groups: dict = {}
        for i, im in enumerate(images):
            groups.setdefault(resized_size(im.shape[0], im.shape[1], c.min_size, c.max_size), []).append(i)
        for idxs in groups.values():
            for s in range(0, len(idxs), max(1, batch_size)):
                chunk = idxs[s: s + max(1, batch_size)]
                for i, r in zip(chunk, self._run_batch([images[i] for i in chunk], trace)):
                    out[i] = r
        return out
