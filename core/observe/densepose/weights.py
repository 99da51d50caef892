"""DensePose R-CNN checkpoints: safe reading of detectron2 zoo ``.pkl`` files and validation.

The zoo format is a pickle of ``{"model": OrderedDict[name -> numpy.ndarray], "__author__": ...}``.
It is read with a restricted unpickler that resolves only the four globals such files need
(``collections.OrderedDict``, ``numpy.dtype``, ``numpy.ndarray``,
``numpy.core.multiarray._reconstruct``); anything else (``os.system``, ``builtins.eval``, ...)
is refused before it can run.

The expected names and shapes are derived from the architecture family (ResNet-50/101 + FPN,
Faster R-CNN box head, DensePose decoder, V1ConvX or DeepLab head, chart predictor); the layer
widths are read from a few anchor tensors of the file itself, so the tiny test model and the real
checkpoints go through the same checks.
"""
from __future__ import annotations

import io
import math
import os
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import MissingWeightsError, WeightsFormatError
from ...paths import DENSEPOSE_CHECKPOINT
from ...safe_pickle import RestrictedUnpickler

DEFAULT_WEIGHTS = DENSEPOSE_CHECKPOINT

DOWNLOAD_HINT = (
    "download densepose_rcnn_R_50_FPN_s1x (model_final_162be9.pkl, CC BY-SA 3.0) from the DensePose "
    "model zoo (detectron2 projects/DensePose/doc/DENSEPOSE_IUV.md): "
    "https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl "
    "and put it at weights/densepose/model_final_162be9.pkl (or pass --weights PATH); "
    "see weights/README.md"
)

# buffers that older checkpoints may contain but that are not part of the model state
IGNORED_KEYS = ("pixel_mean", "pixel_std")
IGNORED_PREFIXES = ("proposal_generator.anchor_generator.cell_anchors.",)


class _RestrictedUnpickler(RestrictedUnpickler):
    """core.safe_pickle's allow-list as is (OrderedDict, numpy dtype/ndarray/_reconstruct); DensePose wording."""

    def refuse_global(self, module: str, name: str) -> Exception:
        return WeightsFormatError(
            f"refusing to load: the pickle references {module}.{name}, which a DensePose checkpoint never "
            "needs (only numpy arrays and plain containers are allowed); the file may be hostile"
        )

    def refuse_persistent_id(self, pid) -> Exception:
        return WeightsFormatError("refusing to load: the pickle uses persistent ids (not a detectron2 .pkl)")


def read_checkpoint(path: str | os.PathLike) -> "OrderedDict[str, np.ndarray]":
    """Read a detectron2 ``.pkl`` checkpoint safely; returns name -> float32 numpy array.

    Raises MissingWeightsError if the file is absent and WeightsFormatError if it is not a
    detectron2 pickle of numpy arrays (or is hostile).
    """
    path = Path(path)
    if not path.exists():
        raise MissingWeightsError(f"DensePose checkpoint not found: {path}; {DOWNLOAD_HINT}")
    if path.is_dir():
        raise WeightsFormatError(f"expected a DensePose .pkl checkpoint file, got a folder: {path}")
    data = path.read_bytes()
    if not data:
        raise WeightsFormatError(f"DensePose checkpoint is empty (0 bytes): {path}")
    if zipfile.is_zipfile(io.BytesIO(data)):
        raise WeightsFormatError(
            f"{path.name} is a PyTorch zip checkpoint, not a detectron2 model-zoo .pkl; {DOWNLOAD_HINT}"
        )
    try:
        obj = _RestrictedUnpickler.loads(data, encoding="latin1")
    except WeightsFormatError as err:
        raise WeightsFormatError(f"{path.name}: {err}") from None
    except Exception as err:  # any malformed pickle: one clear line
        raise WeightsFormatError(
            f"{path.name} is not a readable detectron2 .pkl checkpoint ({type(err).__name__}: {err})"
        ) from None
    return _extract_state(obj, path.name)


def _extract_state(obj, name: str) -> "OrderedDict[str, np.ndarray]":
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise WeightsFormatError(f"{name}: expected a dict of named arrays (detectron2 zoo format), got {type(obj).__name__}")
    keys = list(obj.keys())
    if not all(isinstance(k, str) for k in keys):
        raise WeightsFormatError(f"{name}: checkpoint keys must be strings")
    if all(k.startswith("module.") for k in keys):
        obj = OrderedDict((k[len("module."):], v) for k, v in obj.items())
    state: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for k, v in obj.items():
        if k in IGNORED_KEYS or k.startswith(IGNORED_PREFIXES):
            continue
        if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
            raise WeightsFormatError(f"{name}: value of {k!r} is not a floating-point numpy array")
        state[k] = np.ascontiguousarray(v, dtype=np.float32)
    return state


# ----------------------------------------------------------------------------------------------
# architecture read from the checkpoint, and the names/shapes it implies
# ----------------------------------------------------------------------------------------------
_STAGE_BLOCKS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101}
DECODER_LEVELS = ("p2", "p3", "p4", "p5")
DECODER_CONVS = {"p2": 1, "p3": 1, "p4": 2, "p5": 3}  # max(1, log2(stride) - log2(4))
DL_ATROUS_RATES = (6, 12, 56)


@dataclass(frozen=True)
class ArchSpec:
    """Widths and depths of a DensePose R-CNN chart model (read from a checkpoint)."""

    stage_blocks: tuple[int, int, int, int]
    stem_channels: int
    bottleneck_channels: int  # res2; doubles per stage
    res2_channels: int  # res2 output; doubles per stage
    fpn_channels: int
    num_anchors: int
    box_pool: int
    box_fc_dims: tuple[int, ...]
    num_classes: int
    decoder_on: bool
    decoder_conv_dims: int
    decoder_out: int
    head: str  # "v1convx" or "deeplab"
    head_convs: int
    head_dim: int
    head_kernel: int
    nonlocal_on: bool
    coarse_channels: int
    fine_channels: int  # num_patches + 1
    deconv_kernel: int

    @property
    def depth(self) -> int:
        return _STAGE_BLOCKS[self.stage_blocks]

    def stage_channels(self, k: int) -> tuple[int, int]:
        """(bottleneck, out) channels of stage res{k}, k = 2..5."""
        f = 2 ** (k - 2)
        return self.bottleneck_channels * f, self.res2_channels * f


def _shape(state, key, name):
    if key not in state:
        raise WeightsFormatError(f"{name}: incomplete, or not a DensePose R-CNN chart checkpoint (missing {key!r})")
    return tuple(state[key].shape)


def _count(state, prefix_fmt: str, suffix: str) -> int:
    n = 0
    while prefix_fmt.format(n) + suffix in state:
        n += 1
    return n


def infer_arch(state, name: str = "checkpoint") -> ArchSpec:
    """Read the architecture's widths from anchor tensors; raise WeightsFormatError if unknown."""
    bu = "backbone.bottom_up."
    stem = _shape(state, bu + "stem.conv1.weight", name)[0]
    blocks = tuple(_count(state, bu + f"res{k}" + ".{}", ".conv1.weight") for k in range(2, 6))
    if blocks not in _STAGE_BLOCKS:
        missing = [f"res{k}" for k, b in zip(range(2, 6), blocks) if b == 0]
        if missing:
            raise WeightsFormatError(
                f"{name}: incomplete checkpoint, no backbone blocks for {', '.join(missing)}"
            )
        raise WeightsFormatError(f"{name}: unsupported ResNet depth (blocks per stage {blocks}); expected R-50 or R-101")
    bottleneck = _shape(state, bu + "res2.0.conv1.weight", name)[0]
    res2 = _shape(state, bu + "res2.0.conv3.weight", name)[0]
    fpn = _shape(state, "backbone.fpn_output2.weight", name)[0]
    anchors = _shape(state, "proposal_generator.rpn_head.objectness_logits.weight", name)[0]
    n_fc = 0
    while f"roi_heads.box_head.fc{n_fc + 1}.weight" in state:
        n_fc += 1
    if n_fc == 0:
        raise WeightsFormatError(f"{name}: not a DensePose R-CNN chart checkpoint (missing 'roi_heads.box_head.fc1.weight')")
    fc_dims = tuple(state[f"roi_heads.box_head.fc{i + 1}.weight"].shape[0] for i in range(n_fc))
    fc1_in = state["roi_heads.box_head.fc1.weight"].shape[1]
    pool = int(round(math.sqrt(fc1_in / max(fpn, 1))))
    if pool * pool * fpn != fc1_in:
        raise WeightsFormatError(f"{name}: box head fc1 input {fc1_in} is not FPN channels ({fpn}) x pool^2")
    num_classes = _shape(state, "roi_heads.box_predictor.cls_score.weight", name)[0] - 1
    decoder_on = "roi_heads.decoder.predictor.weight" in state
    dec_dims = state["roi_heads.decoder.p2.0.weight"].shape[0] if "roi_heads.decoder.p2.0.weight" in state else 0
    dec_out = state["roi_heads.decoder.predictor.weight"].shape[0] if decoder_on else 0
    dh = "roi_heads.densepose_head."
    if dh + "ASPP.project.0.weight" in state:
        head = "deeplab"
    elif dh + "body_conv_fcn1.weight" in state:
        head = "v1convx"
    else:
        raise WeightsFormatError(f"{name}: no DensePose head found (expected {dh}body_conv_fcn1.weight); "
                                 "only chart (IUV) DensePose R-CNN checkpoints are supported")
    n_convs = 0
    while f"{dh}body_conv_fcn{n_convs + 1}.weight" in state:
        n_convs += 1
    w1 = _shape(state, dh + "body_conv_fcn1.weight", name)
    pred = "roi_heads.densepose_predictor."
    ann = _shape(state, pred + "ann_index_lowres.weight", name)
    fine = _shape(state, pred + "index_uv_lowres.weight", name)
    return ArchSpec(
        stage_blocks=blocks,  # type: ignore[arg-type]
        stem_channels=stem,
        bottleneck_channels=bottleneck,
        res2_channels=res2,
        fpn_channels=fpn,
        num_anchors=anchors,
        box_pool=pool,
        box_fc_dims=fc_dims,
        num_classes=num_classes,
        decoder_on=decoder_on,
        decoder_conv_dims=dec_dims,
        decoder_out=dec_out,
        head=head,
        head_convs=n_convs,
        head_dim=w1[0],
        head_kernel=w1[-1],
        nonlocal_on=(dh + "NLBlock.g.0.weight") in state,
        coarse_channels=ann[1],
        fine_channels=fine[1],
        deconv_kernel=ann[-1],
    )


def expected_shapes(arch: ArchSpec) -> "OrderedDict[str, tuple[int, ...]]":
    """Every state-dict name and shape implied by ``arch``, in detectron2's state_dict order."""
    out: "OrderedDict[str, tuple[int, ...]]" = OrderedDict()

    def conv(name, cout, cin, k, bias=True):
        out[name + ".weight"] = (cout, cin, k, k)
        if bias:
            out[name + ".bias"] = (cout,)

    def frozen_bn(name, c):
        for t in ("weight", "bias", "running_mean", "running_var"):
            out[f"{name}.norm.{t}"] = (c,)

    def gn(name, c):
        out[name + ".weight"] = (c,)
        out[name + ".bias"] = (c,)

    F = arch.fpn_channels
    for k in range(2, 6):
        cin = arch.stage_channels(k)[1]
        conv(f"backbone.fpn_lateral{k}", F, cin, 1)
        conv(f"backbone.fpn_output{k}", F, F, 3)
    bu = "backbone.bottom_up."
    conv(bu + "stem.conv1", arch.stem_channels, 3, 7, bias=False)
    frozen_bn(bu + "stem.conv1", arch.stem_channels)
    cin = arch.stem_channels
    for k, nb in zip(range(2, 6), arch.stage_blocks):
        b, cout = arch.stage_channels(k)
        for i in range(nb):
            p = f"{bu}res{k}.{i}."
            if i == 0 and cin != cout:
                conv(p + "shortcut", cout, cin, 1, bias=False)
                frozen_bn(p + "shortcut", cout)
            conv(p + "conv1", b, cin, 1, bias=False)
            frozen_bn(p + "conv1", b)
            conv(p + "conv2", b, b, 3, bias=False)
            frozen_bn(p + "conv2", b)
            conv(p + "conv3", cout, b, 1, bias=False)
            frozen_bn(p + "conv3", cout)
            cin = cout
    A = arch.num_anchors
    conv("proposal_generator.rpn_head.conv", F, F, 3)
    conv("proposal_generator.rpn_head.objectness_logits", A, F, 1)
    conv("proposal_generator.rpn_head.anchor_deltas", 4 * A, F, 1)
    din = F * arch.box_pool * arch.box_pool
    for i, d in enumerate(arch.box_fc_dims):
        out[f"roi_heads.box_head.fc{i + 1}.weight"] = (d, din)
        out[f"roi_heads.box_head.fc{i + 1}.bias"] = (d,)
        din = d
    K = arch.num_classes
    out["roi_heads.box_predictor.cls_score.weight"] = (K + 1, din)
    out["roi_heads.box_predictor.cls_score.bias"] = (K + 1,)
    out["roi_heads.box_predictor.bbox_pred.weight"] = (4 * K, din)
    out["roi_heads.box_predictor.bbox_pred.bias"] = (4 * K,)
    head_in = F
    if arch.decoder_on:
        D = arch.decoder_conv_dims
        for lvl in DECODER_LEVELS:
            for j in range(DECODER_CONVS[lvl]):
                conv(f"roi_heads.decoder.{lvl}.{2 * j if lvl != 'p2' else j}", D, F if j == 0 else D, 3)
        conv("roi_heads.decoder.predictor", arch.decoder_out, D, 1)
    dh = "roi_heads.densepose_head."
    H = arch.head_dim
    if arch.head == "deeplab":
        C = head_in
        conv(dh + "ASPP.convs.0.0", C, C, 1, bias=False)
        gn(dh + "ASPP.convs.0.1", C)
        for j in (1, 2, 3):
            conv(f"{dh}ASPP.convs.{j}.0", C, C, 3, bias=False)
            gn(f"{dh}ASPP.convs.{j}.1", C)
        conv(dh + "ASPP.convs.4.1", C, C, 1, bias=False)
        gn(dh + "ASPP.convs.4.2", C)
        conv(dh + "ASPP.project.0", C, 5 * C, 1, bias=False)
        if arch.nonlocal_on:
            inter = max(C // 2, 1)
            conv(dh + "NLBlock.g.0", inter, C, 1)
            conv(dh + "NLBlock.W.0", C, inter, 1)
            gn(dh + "NLBlock.W.1", C)
            conv(dh + "NLBlock.theta", inter, C, 1)
            conv(dh + "NLBlock.phi.0", inter, C, 1)
        cin = C
        for i in range(arch.head_convs):
            conv(f"{dh}body_conv_fcn{i + 1}", H, cin, arch.head_kernel, bias=False)
            gn(f"{dh}body_conv_fcn{i + 1}.norm", H)
            cin = H
    else:
        cin = head_in
        for i in range(arch.head_convs):
            conv(f"{dh}body_conv_fcn{i + 1}", H, cin, arch.head_kernel)
            cin = H
    pr = "roi_heads.densepose_predictor."
    k = arch.deconv_kernel
    for nm, c in (
        ("ann_index_lowres", arch.coarse_channels),
        ("index_uv_lowres", arch.fine_channels),
        ("u_lowres", arch.fine_channels),
        ("v_lowres", arch.fine_channels),
    ):
        out[pr + nm + ".weight"] = (H, c, k, k)
        out[pr + nm + ".bias"] = (c,)
    return out


def validate_state(state, name: str = "checkpoint") -> ArchSpec:
    """Check every key and shape against the architecture read from the file; return it."""
    arch = infer_arch(state, name)
    if arch.decoder_on and arch.decoder_out != arch.fpn_channels:
        raise WeightsFormatError(
            f"{name}: decoder output channels ({arch.decoder_out}) differ from the FPN channels "
            f"({arch.fpn_channels}); detectron2 cannot build such a model either"
        )
    expected = expected_shapes(arch)
    missing = [k for k in expected if k not in state]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise WeightsFormatError(
            f"{name}: partial or wrong checkpoint, {len(missing)} expected tensors are missing "
            f"({', '.join(missing[:3])}{more})"
        )
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        more = f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else ""
        raise WeightsFormatError(
            f"{name}: unexpected tensors for a DensePose R-CNN chart model "
            f"({', '.join(unexpected[:3])}{more})"
        )
    bad = [(k, tuple(state[k].shape), s) for k, s in expected.items() if tuple(state[k].shape) != s]
    if bad:
        k, got, want = bad[0]
        more = f" ({len(bad) - 1} more)" if len(bad) > 1 else ""
        raise WeightsFormatError(f"{name}: wrong shape for {k}: {list(got)}, expected {list(want)}{more}")
    for k, v in state.items():
        if not np.all(np.isfinite(v)):
            raise WeightsFormatError(f"{name}: tensor {k} contains NaN or Inf")
    return arch


# The official model-zoo architectures (widths of densepose_rcnn_R_50_FPN_s1x / _DL_s1x).
R50_FPN_S1X = ArchSpec(
    stage_blocks=(3, 4, 6, 3), stem_channels=64, bottleneck_channels=64, res2_channels=256, fpn_channels=256,
    num_anchors=3, box_pool=7, box_fc_dims=(1024, 1024), num_classes=1, decoder_on=True, decoder_conv_dims=256,
    decoder_out=256, head="v1convx", head_convs=8, head_dim=512, head_kernel=3, nonlocal_on=False,
    coarse_channels=2, fine_channels=25, deconv_kernel=4,
)
R50_FPN_DL_S1X = ArchSpec(**{**R50_FPN_S1X.__dict__, "head": "deeplab"})
