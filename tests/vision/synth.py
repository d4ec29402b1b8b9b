#!/usr/bin/python3
"""Synthetic test data for Croupier's vision: playing cards on tables, and roulette wheels.

Deterministic from --seed: every random choice comes from a generator seeded with
(seed, kind, index), so the same seed and arguments give byte-identical files, whatever
--jobs is. Uses only the standard library, numpy, OpenCV (Debian's python3-opencv) and
rsvg-convert (librsvg2-bin); the card faces come from Debian's kdegames-card-data-kf5.

    /usr/bin/python3 tests/vision/synth.py --seed 1 --out DIR [--decks all|name,name]
        [--tables 4] [--scenes 60] [--empty 200] [--wheel 300] [--size 1280x720] [--jobs 2]

See tests/vision/README.md for the output layout and label formats.
"""

import argparse
import gzip
import json
import math
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

import cv2
import numpy as np

VERSION = "1.0.0"

DECK_ROOT = "/usr/share/carddecks"
RANKS = "A23456789TJQK"
SUITS = "SHDC"
SVG_RANK = {"A": "1", "T": "10", "J": "jack", "Q": "queen", "K": "king"}
SVG_SUIT = {"S": "spade", "H": "heart", "D": "diamond", "C": "club"}
CODES = [r + s for s in SUITS for r in RANKS]
BACK_IDS = ("back", "card_back", "cardback")

# Decks of kdegames-card-data-kf5 looked at and found unfit for a casino recogniser's tests.
# (Decks with missing card ids, or cards that are embedded bitmaps, are detected and skipped
# automatically; any deck not listed and complete is used.)
VETTED_SKIP = {
    "future": "science-fiction design: ranks drawn as 0-9/A-C tabs with binary bars, "
              "no French suit pips and landscape cards",
    "konqi-modern": "cards are embedded 72x96 bitmaps (rsvg-convert -i cannot export them) "
                    "with four-colour suits (red spades, green hearts, teal diamonds)",
    "oxygen": "rank printed only at the top-right and suit only at the bottom-left: "
              "no mirrored top-left/bottom-right corner indices",
    "oxygen-air": "rank printed only at the top-right and suit only at the bottom-left: "
                  "no mirrored top-left/bottom-right corner indices",
    "oxygen-white": "rank printed only at the top-right and suit only at the bottom-left: "
                    "no mirrored top-left/bottom-right corner indices",
    "xskat-french": "cards are embedded 72x112 bitmaps; German rank letters (D = queen, B = jack)",
    "xskat-german": "German suits (acorns, leaves, hearts, bells) and ranks (U, O, K, D)",
}

FACE_H = 528            # face PNG height, px (6 px/mm: sharper than any camera view)
CARD_H_MM = 88.0        # cards are drawn 88 mm tall, width from the deck's aspect
INDEX_W_MM, INDEX_H_MM = 14.0, 40.0
TABLE_W_MM, TABLE_H_MM = 1000.0, 600.0
SS = 2                  # supersampling factor of every rendered frame
TEX_PPM = 4.0           # table texture, px per mm (above the card camera's 2.5-3.5)

# The card camera is a dedicated close-up camera over the dealing area (docs/vision.md,
# "Card camera"): the dealer's, the player's and the banker's card boxes in front of the
# dealer, 400 x 225 mm of the layout, seen at 2.5 px/mm or more everywhere at 1280x720.
DEAL_AREA_MM = (300.0, 20.0, 700.0, 245.0)      # x0, y0, x1, y1 on the table plane
MIN_PX_PER_MM = 2.5                              # the studio requirement, at 1280x720
ZONES = [
    ("dealer", [[408, 22], [592, 22], [600, 30], [600, 114], [592, 122], [408, 122],
                [400, 114], [400, 30]]),
    ("player", [[313, 128], [487, 128], [495, 136], [495, 235], [487, 243], [313, 243],
                [305, 235], [305, 136]]),
    ("banker", [[513, 128], [687, 128], [695, 136], [695, 235], [687, 243], [513, 243],
                [505, 235], [505, 136]]),
]
ZONE_TEXT = {"player": "PLAYER", "banker": "BANKER", "dealer": "DEALER"}

# felt families (RGB ranges); table k uses family k mod 4
FELTS = [
    ("green", (18, 45), (92, 128), (45, 72)),
    ("blue", (18, 40), (48, 80), (105, 145)),
    ("red", (112, 150), (18, 34), (24, 40)),
    ("brown", (92, 120), (62, 80), (38, 55)),
]

EURO = "0 32 15 19 4 21 2 25 17 34 6 27 13 36 11 30 8 23 10 5 24 16 33 1 20 14 31 9 22 18 29 7 28 12 35 3 26".split()
AMER = "0 28 9 26 30 11 7 20 32 17 5 22 34 15 3 24 36 13 1 00 27 10 25 29 12 8 19 31 18 6 21 33 16 4 23 35 14 2".split()
REDS = {1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36}
# wheel radii as fractions of the rim's outer radius
WR = {"rim": (0.90, 1.0), "track": (0.76, 0.90), "bowl": (0.72, 0.76),
      "numbers": (0.60, 0.72), "pockets": (0.47, 0.60), "cone": (0.0, 0.47)}


# ----------------------------------------------------------------------------- utilities

def seed_rng(seed, kind, *index):
    words = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF, zlib.crc32(kind.encode())]
    words += [int(i) & 0xFFFFFFFF for i in index]
    return np.random.default_rng(np.random.SeedSequence(words))


def U(rng, a, b):
    return float(rng.uniform(a, b))


class Exact(list):
    """A matrix written with 10 significant digits instead of r3's 3 decimals."""


def r3(x):
    """Round floats (recursively) for JSON."""
    if isinstance(x, Exact):
        return [[float("%.10g" % v) for v in row] for row in x]
    if isinstance(x, (list, tuple)):
        return [r3(v) for v in x]
    if isinstance(x, np.ndarray):
        return r3(x.tolist())
    if isinstance(x, dict):
        return {k: r3(v) for k, v in x.items()}
    if isinstance(x, (float, np.floating)):
        v = round(float(x), 3)
        return 0.0 if v == 0 else v
    if isinstance(x, np.integer):
        return int(x)
    return x


_FLAT = re.compile(r"\[[^\[\]{}\"]*\]")


def write_json(path, obj):
    text = json.dumps(r3(obj), indent=1)
    text = _FLAT.sub(lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text)
    with open(path, "w") as f:
        f.write(text + "\n")


def write_png(path, img, photo=False):
    # camera frames are noisy: Huffman-only coding is faster and smaller for them
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    if photo:
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
    ok, buf = cv2.imencode(".png", img, params)
    assert ok
    with open(path, "wb") as f:
        f.write(buf.tobytes())


def Tm(tx, ty):
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], float)


def Sm(sx, sy=None):
    return np.diag([sx, sx if sy is None else sy, 1.0])


def Rm(deg):
    """Rotation by deg, clockwise on screen (y axis down)."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], float)


def Rx(deg):
    a = math.radians(deg); c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def Ry(deg):
    a = math.radians(deg); c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def Rz(deg):
    a = math.radians(deg); c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def proj(M, pts):
    p = np.asarray(pts, float).reshape(-1, 2)
    q = np.c_[p, np.ones(len(p))] @ np.asarray(M, float).T
    return q[:, :2] / q[:, 2:3]


# final image px (pixel centres at integers) -> supersampled image px
SS_M = np.array([[SS, 0, (SS - 1) / 2], [0, SS, (SS - 1) / 2], [0, 0, 1]], float)


def patch_to_local(ppm, ox, oy):
    """Patch pixel (centre at integer index) -> local mm, patch origin (ox, oy) mm."""
    return np.array([[1 / ppm, 0, ox + 0.5 / ppm], [0, 1 / ppm, oy + 0.5 / ppm], [0, 0, 1]])


def premul(bgr, alpha):
    """float32 premultiplied BGRA from bgr (0..255) and alpha (0..1)."""
    a = alpha.astype(np.float32)
    return np.dstack([bgr.astype(np.float32) * a[..., None], a])


def composite(img, src, M, blend=1.0):
    """Alpha-composites premultiplied float32 BGRA `src` into float32 BGR `img` in place,
    through the 3x3 map M (src px -> img px)."""
    h, w = src.shape[:2]
    H, W = img.shape[:2]
    c = proj(M, [[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    x0 = max(int(math.floor(c[:, 0].min())) - 2, 0)
    y0 = max(int(math.floor(c[:, 1].min())) - 2, 0)
    x1 = min(int(math.ceil(c[:, 0].max())) + 3, W)
    y1 = min(int(math.ceil(c[:, 1].max())) + 3, H)
    if x1 <= x0 or y1 <= y0:
        return
    warped = cv2.warpPerspective(src, Tm(-x0, -y0) @ M, (x1 - x0, y1 - y0),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=(0, 0, 0, 0))
    a = warped[:, :, 3:4] * blend
    roi = img[y0:y1, x0:x1]
    roi *= 1 - a
    roi += warped[:, :, :3] * blend


def shadow(img, alpha, M, offset, sigma, opacity):
    """Darkens img under the warped alpha mask shifted by offset (img px) and blurred."""
    h, w = alpha.shape[:2]
    H, W = img.shape[:2]
    M2 = Tm(offset[0], offset[1]) @ M
    c = proj(M2, [[0, 0], [w, 0], [w, h], [0, h]])
    pad = int(3 * sigma) + 3
    x0 = max(int(math.floor(c[:, 0].min())) - pad, 0)
    y0 = max(int(math.floor(c[:, 1].min())) - pad, 0)
    x1 = min(int(math.ceil(c[:, 0].max())) + pad, W)
    y1 = min(int(math.ceil(c[:, 1].max())) + pad, H)
    if x1 <= x0 or y1 <= y0:
        return
    m = cv2.warpPerspective(alpha.astype(np.float32), Tm(-x0, -y0) @ M2, (x1 - x0, y1 - y0),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if sigma > 0.3:
        m = cv2.GaussianBlur(m, (0, 0), sigma)
    img[y0:y1, x0:x1] *= (1 - opacity * m)[..., None]


def aa_poly(mask, pts, val=255, ppm=1.0, origin=(0.0, 0.0)):
    """Anti-aliased filled polygon; pts in mm, patch at ppm px/mm with mm origin."""
    p = (np.asarray(pts, float) - origin) * ppm - 0.5
    cv2.fillPoly(mask, [np.round(p * 16).astype(np.int32)], val, cv2.LINE_AA, 4)


def aa_circle(img, centre, r, colour, thickness=-1):
    cv2.circle(img, (int(round(centre[0] * 16)), int(round(centre[1] * 16))),
               int(round(r * 16)), colour, thickness, cv2.LINE_AA, 4)


def text_mask(text, height_px, thickness_frac=0.13, font=cv2.FONT_HERSHEY_SIMPLEX, max_w=None):
    """White-on-black text mask (float32 0..1) about height_px tall, tightly padded,
    squeezed horizontally to at most max_w px."""
    (tw, th), base = cv2.getTextSize(text, font, 1.0, 1)
    scale = height_px / th
    thick = max(1, int(round(height_px * thickness_frac)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    pad = thick + 2
    m = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(m, text, (pad, pad + th), font, scale, 255, thick, cv2.LINE_AA)
    ys, xs = np.nonzero(m)
    m = m[max(ys.min() - 1, 0):ys.max() + 2, max(xs.min() - 1, 0):xs.max() + 2]
    m = m.astype(np.float32) / 255
    if max_w is not None and m.shape[1] > max_w:
        m = cv2.resize(m, (max(1, int(max_w)), m.shape[0]), interpolation=cv2.INTER_AREA)
    return m


def stamp(layer_bgr, layer_a, mask, cx, cy, angle_deg, colour, opacity=1.0):
    """Pastes mask (centred at cx, cy px, rotated clockwise) into a BGR + alpha layer pair."""
    h, w = mask.shape
    M = Tm(cx, cy) @ Rm(angle_deg) @ Tm(-(w - 1) / 2, -(h - 1) / 2)
    H, W = layer_a.shape
    c = proj(M, [[-1, -1], [w, -1], [w, h], [-1, h]])
    x0, y0 = max(int(c[:, 0].min()) - 1, 0), max(int(c[:, 1].min()) - 1, 0)
    x1, y1 = min(int(c[:, 0].max()) + 2, W), min(int(c[:, 1].max()) + 2, H)
    if x1 <= x0 or y1 <= y0:
        return
    m = cv2.warpAffine(mask, (Tm(-x0, -y0) @ M)[:2], (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0) * opacity
    roi = layer_bgr[y0:y1, x0:x1]
    roi[:] = roi * (1 - m[..., None]) + np.float32(colour) * m[..., None]
    np.maximum(layer_a[y0:y1, x0:x1], m, out=layer_a[y0:y1, x0:x1])


def lowfreq_noise(rng, h, w, cell):
    """Smooth noise, about unit variance, features about `cell` px."""
    gh, gw = max(2, int(h / cell) + 3), max(2, int(w / cell) + 3)
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 0.8)
    g /= max(float(g.std()), 1e-6)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


# ----------------------------------------------------------------------------- decks

def read_svg(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def survey_decks(root=DECK_ROOT):
    """[(name, info)], info: {usable, reason, svgz, ...}, sorted by name."""
    out = []
    if not os.path.isdir(root):
        return out
    for d in sorted(os.listdir(root)):
        path = os.path.join(root, d)
        if not d.startswith("svg-") or not os.path.isdir(path):
            continue
        name = d[4:]
        files = sorted(f for f in os.listdir(path) if f.endswith((".svgz", ".svg")))
        info = {"name": name, "dir": path, "usable": False}
        if not files:
            info["reason"] = "no SVG file"
            out.append(info)
            continue
        info["svgz"] = os.path.join(path, files[0])
        text = read_svg(info["svgz"])
        ids = set(re.findall(r'\bid="([^"]+)"', text))
        eid = {c: SVG_RANK.get(c[0], c[0]) + "_" + SVG_SUIT[c[1]] for c in CODES}
        missing = [c for c in CODES if eid[c] not in ids]
        m = re.search(r'<([\w:]+)\s[^<>]*?\bid="1_spade"', text, re.S)
        tag = m.group(1) if m else None
        info["ids"] = eid
        info["back_id"] = next((b for b in BACK_IDS if b in ids), None)
        if missing:
            info["reason"] = "missing card elements: " + " ".join(eid[c] for c in missing)
        elif tag in ("image", "svg:image"):
            info["reason"] = "cards are embedded bitmaps (<image>), not vector art"
        elif name in VETTED_SKIP:
            info["reason"] = VETTED_SKIP[name]
        else:
            info["usable"] = True
        out.append(info)
    return out


def rsvg(svg, eid, zoom):
    p = subprocess.run(["rsvg-convert", "-i", eid, "-z", "%.6f" % zoom, "-f", "png", svg],
                       capture_output=True)
    if p.returncode != 0 or not p.stdout:
        raise RuntimeError("rsvg-convert -i %s %s: %s" % (eid, svg, p.stderr.decode()[:300]))
    img = cv2.imdecode(np.frombuffer(p.stdout, np.uint8), cv2.IMREAD_UNCHANGED)
    if img.ndim == 2 or img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA if img.ndim == 2 else cv2.COLOR_BGR2BGRA)
    return img


def alpha_crop(img):
    """Crops to the card: alpha >= 50 %, which leaves out soft drop shadows and glows that
    some decks draw around their cards."""
    ys, xs = np.nonzero(img[:, :, 3] >= 128)
    if len(ys) == 0:
        raise RuntimeError("empty render")
    return img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def render_face(task):
    """(svg, eid, zoom, width, out_png) -> (out_png, rendered width, rendered height).
    BGRA, RGB over white; every face of a deck gets the same size, width x FACE_H."""
    svg, eid, zoom, W, out = task
    img = alpha_crop(rsvg(svg, eid, zoom))
    a = img[:, :, 3].astype(np.float32) / 255
    p = img[:, :, :3].astype(np.float32) * a[..., None]
    h, w = a.shape
    if (W, FACE_H) != (w, h):
        interp = cv2.INTER_AREA if h > FACE_H else cv2.INTER_CUBIC
        p = cv2.resize(p, (W, FACE_H), interpolation=interp)
        a = np.clip(cv2.resize(a, (W, FACE_H), interpolation=interp), 0, 1)
    rgb = p + 255 * (1 - a[..., None])
    out_img = np.dstack([np.clip(np.rint(rgb), 0, 255), np.clip(np.rint(a * 255), 0, 255)])
    write_png(out, out_img.astype(np.uint8))
    return out, w, h


def face_premul(im):
    """Premultiplied float32 BGRA from a face PNG's pixels."""
    a = im[:, :, 3].astype(np.float32) / 255
    p = np.clip(im[:, :, :3].astype(np.float32) - 255 * (1 - a[..., None]), 0, None)
    return np.dstack([p, a])


# ----------------------------------------------------------------------------- tables

def area_scale(Hm, pts):
    """Smallest and largest linear scale (px per mm) of the homography over the points:
    the singular values of its Jacobian there."""
    out = []
    for x, y in pts:
        d = 1e-3
        p = proj(Hm, [[x, y], [x + d, y], [x, y + d]])
        J = np.c_[(p[1] - p[0]) / d, (p[2] - p[0]) / d]
        sv = np.linalg.svd(J, compute_uv=False)
        out.append((sv.min(), sv.max()))
    out = np.asarray(out)
    return float(out[:, 0].min()), float(out[:, 1].max())


def make_table(seed, k, W, H):
    """The card camera of table k: a pinhole above the dealing area (30-50 degree field of
    view), tilted 0-25 degrees from vertical, rolled up to +-4 degrees (it is mounted square to
    the layout; poses that cannot frame the whole area are drawn again), as close as the
    studio requirement asks: the dealing area's worst-seen point at 2.5-2.9 px/mm (at
    1280x720; other sizes scale), and the whole area in the frame."""
    rng = seed_rng(seed, "table", k)
    fam, rr, gr, br = FELTS[k % len(FELTS)]
    felt_rgb = [int(rng.integers(rr[0], rr[1] + 1)), int(rng.integers(gr[0], gr[1] + 1)),
                int(rng.integers(br[0], br[1] + 1))]
    ax0, ay0, ax1, ay1 = DEAL_AREA_MM
    area = [[x, y] for x in np.linspace(ax0, ax1, 9) for y in np.linspace(ay0, ay1, 6)]
    area_corners = [[ax0, ay0], [ax1, ay0], [ax1, ay1], [ax0, ay1]]
    need = MIN_PX_PER_MM * W / 1280.0
    corners = [[0, 0], [TABLE_W_MM, 0], [TABLE_W_MM, TABLE_H_MM], [0, TABLE_H_MM]]
    for attempt in range(200):
        # a close-up camera: a normal to long lens some 0.6-1 m above the cards
        fov = U(rng, 30, 50)
        f = (W / 2) / math.tan(math.radians(fov / 2))
        tilt = U(rng, 0, 25)
        side = 1 if rng.random() < 0.5 else -1
        pan = U(rng, -4, 4)
        roll = U(rng, -4, 4)
        target = np.array([(ax0 + ax1) / 2 + U(rng, -10, 10), (ay0 + ay1) / 2 + U(rng, -8, 8), 0.0])
        want = need * U(rng, 1.0, 1.12)
        jx, jy = U(rng, -1, 1), U(rng, -1, 1)
        R = Rz(roll) @ Rx(side * tilt) @ Ry(pan)
        K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
        D = 1200.0
        for _ in range(40):
            C = target - D * (R.T @ np.array([0, 0, 1.0]))
            t = -R @ C
            Hm = K @ np.c_[R[:, 0], R[:, 1], t]
            lo, _ = area_scale(Hm, area)
            D *= lo / want
        p = proj(Hm, area_corners)
        bw, bh = np.ptp(p[:, 0]), np.ptp(p[:, 1])
        if bw > W - 16 or bh > H - 16:
            continue        # too close for this tilt and roll: draw another pose
        sx, sy = (W - bw) / 2 - 8, (H - bh) / 2 - 8
        dx = W / 2 - (p[:, 0].min() + p[:, 0].max()) / 2 + 0.8 * jx * sx
        dy = H / 2 - (p[:, 1].min() + p[:, 1].max()) / 2 + 0.8 * jy * sy
        Hm = Tm(dx, dy) @ Hm
        Hm = Hm / Hm[2, 2]
        break
    else:
        raise RuntimeError("no card-camera pose fits the dealing area at %.2f px/mm" % need)
    lo, hi = area_scale(Hm, area)
    axis = R.T @ np.array([0, 0, 1.0])
    cal = {
        "version": 1,
        "image": {"width": W, "height": H},
        "table_mm": {"width": int(TABLE_W_MM), "height": int(TABLE_H_MM)},
        "corners_px": proj(Hm, corners).tolist(),
        "card_mm": {"width": 63, "height": 88},
        "zones": [{"name": n, "polygon_mm": poly} for n, poly in ZONES],
        "felt_bgr": felt_rgb[::-1],
    }
    extra = {"table": k, "felt": fam, "fov_deg": fov,
             "tilt_deg": math.degrees(math.acos(min(1.0, abs(axis[2])))),
             "roll_deg": roll, "deal_area_mm": list(DEAL_AREA_MM),
             "deal_area_px_per_mm": {"min": lo, "max": hi},
             "homography_mm_to_px": Exact(Hm.tolist())}
    return {"k": k, "H": Hm, "cal": cal, "extra": extra, "W": W, "H_img": H}


def build_table_image(seed, tb):
    """The empty table as seen by its camera, supersampled, float32 BGR (no photometrics)."""
    k, Hm, W, H = tb["k"], tb["H"], tb["W"], tb["H_img"]
    rng = seed_rng(seed, "tabletex", k)
    Hinv = np.linalg.inv(Hm)
    ic = proj(Hinv, [[-1, -1], [W, -1], [W, H], [-1, H]])
    # only what the camera sees (it frames the dealing area, not the whole layout)
    X0 = math.floor(max(ic[:, 0].min(), -1500)) - 20
    X1 = math.ceil(min(ic[:, 0].max(), 2500)) + 20
    Y0 = math.floor(max(ic[:, 1].min(), -1200)) - 20
    Y1 = math.ceil(min(ic[:, 1].max(), 1800)) + 20
    ppm = TEX_PPM
    w, h = int((X1 - X0) * ppm), int((Y1 - Y0) * ppm)
    xs = (X0 + (np.arange(w, dtype=np.float32) + 0.5) / ppm)[None, :]
    ys = (Y0 + (np.arange(h, dtype=np.float32) + 0.5) / ppm)[:, None]

    felt = np.float32(tb["cal"]["felt_bgr"])
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = felt
    mott = lowfreq_noise(rng, h, w, 70 * ppm)
    tex *= (1 + 0.035 * mott)[..., None]
    grain = rng.standard_normal((h, w), dtype=np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.7)
    nap = cv2.blur(rng.standard_normal((h, w), dtype=np.float32), (1, 9))
    tex += (6.0 * grain + 3.0 * nap)[..., None] * np.float32(0.45 + 0.004 * float(felt.mean()))
    del grain, nap

    # printed markings: zone outlines and labels, gold or cream ink
    ink = np.float32([70, 165, 205]) if rng.random() < 0.6 else np.float32([190, 215, 225])
    ink_op = U(rng, 0.55, 0.8)
    lay = np.zeros((h, w), np.uint8)
    th = int(round(U(rng, 3.0, 4.5) * ppm))
    for name, poly in ZONES:
        p = (np.asarray(poly, float) - (X0, Y0)) * ppm - 0.5
        cv2.polylines(lay, [np.round(p * 16).astype(np.int32)], True, 255, th, cv2.LINE_AA, 4)
    txt_bgr = np.zeros((h, w, 3), np.float32)
    txt_a = np.zeros((h, w), np.float32)
    for name, poly in ZONES:
        pp = np.asarray(poly, float)
        cx, ybot = pp[:, 0].mean(), pp[:, 1].max()
        label = ZONE_TEXT[name]
        hgt = (34 if len(label) == 1 else 14) * ppm
        m = text_mask(label, hgt, 0.10, cv2.FONT_HERSHEY_TRIPLEX)
        stamp(txt_bgr, txt_a, m, (cx - X0) * ppm, (ybot - 16 - 0.5 * hgt / ppm - Y0) * ppm,
              0, ink, 0.55)
    m = text_mask("BANKER PAYS 19 TO 20", 15 * ppm, 0.10, cv2.FONT_HERSHEY_TRIPLEX)
    stamp(txt_bgr, txt_a, m, (500 - X0) * ppm, (615 - Y0) * ppm, 0, ink, 0.8)
    m = text_mask("MIN 10   MAX 1000", 12 * ppm, 0.10, cv2.FONT_HERSHEY_SIMPLEX)
    stamp(txt_bgr, txt_a, m, (500 - X0) * ppm, (262 - Y0) * ppm, 0, ink, 0.7)
    a = lay.astype(np.float32) / 255 * ink_op
    a *= 0.85 + 0.15 * mott.clip(-1, 1)
    tex = tex * (1 - a[..., None]) + ink * a[..., None]
    tex = tex * (1 - txt_a[..., None]) + txt_bgr
    del lay, txt_bgr, txt_a, a

    # player-side padded rail, then floor
    rail_col = np.float32([[22, 24, 28], [18, 32, 58], [22, 22, 70], [30, 30, 34]][int(rng.integers(4))])
    y_rail = 600 + U(rng, 70, 120) + U(rng, 0, 1.2e-4) * (xs - 500) ** 2
    t = (ys - y_rail) / 115.0
    on = (t >= 0) & (t <= 1)
    shade = 0.45 + 0.9 * np.clip(np.sin(np.pi * np.clip(t, 0, 1)), 0, 1) ** 0.7 \
        + 0.9 * np.exp(-((t - 0.33) / 0.07) ** 2)
    leather = 1 + 0.05 * lowfreq_noise(rng, h, w, 12 * ppm)
    tex = np.where(on[..., None], (rail_col * (shade * leather)[..., None]), tex)
    floor = np.float32([16, 17, 19])
    tex = np.where((t > 1)[..., None], floor, tex)

    # dealer side: chip tray, or the table's wooden edge
    if rng.random() < 0.7:
        ty1 = -U(rng, 45, 90)
        ty0 = ty1 - 150
        body = np.float32([38, 38, 42])
        tray = (ys < ty1) & (ys >= ty0)
        tex = np.where(tray[..., None], body, tex)
        tex = np.where(((ys < ty1) & (ys >= ty1 - 6))[..., None], np.float32([120, 125, 130]), tex)
        tex = np.where((ys < ty0)[..., None], floor * 1.3, tex)
        chip_cols = [[30, 30, 180], [40, 130, 40], [25, 25, 25], [150, 70, 30],
                     [120, 40, 110], [40, 170, 210], [225, 225, 225]]
        x = X0 + 30
        while x < X1 - 50:
            if rng.random() < 0.8:
                col = np.float32(chip_cols[int(rng.integers(len(chip_cols)))])
                cy0 = ty0 + 12 + U(rng, 0, 30)
                px0 = int((x + 2 - X0) * ppm); px1 = int((x + 40 - X0) * ppm)
                py0 = int((cy0 - Y0) * ppm); py1 = int((ty1 - 10 - Y0) * ppm)
                if px1 > 0 and px0 < w and py1 > 0 and py0 < h:
                    px0, py0 = max(px0, 0), max(py0, 0)
                    px1, py1 = min(px1, w), min(py1, h)
                    yy = (Y0 + (np.arange(py0, py1) + 0.5) / ppm)
                    stripe = ((yy - cy0) % 3.4) < 0.5
                    xx = (np.arange(px0, px1) - (x + 2 - X0) * ppm) / (38 * ppm)
                    cyl = (0.55 + 0.6 * np.clip(np.sin(np.pi * np.clip(xx, 0, 1)), 0, 1) ** 0.6)
                    blk = col[None, None, :] * cyl[None, :, None] * np.where(stripe, 0.55, 1.0)[:, None, None]
                    spots = (((xx * 8).astype(int) % 3) == 1)[None, :] & ~stripe[:, None]
                    blk = np.where(spots[..., None], np.float32([215, 215, 215]) * cyl[None, :, None], blk)
                    tex[py0:py1, px0:px1] = blk
            x += 44
    else:
        ey = -U(rng, 110, 200)
        wood = np.float32([30, 55, 95])
        band = (ys < ey) & (ys >= ey - 45)
        g = 1 + 0.12 * lowfreq_noise(rng, h, w, 6 * ppm)
        tex = np.where(band[..., None], wood * g[..., None], tex)
        tex = np.where((ys < ey - 45)[..., None], floor, tex)

    # lint and specks
    for _ in range(int(rng.integers(150, 500))):
        x, y = int(rng.integers(w)), int(rng.integers(h))
        cv2.circle(tex, (x, y), int(rng.integers(1, 3)),
                   tuple(float(v) for v in felt * U(rng, 0.6, 1.6)), -1, cv2.LINE_AA)
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    tex2plane = patch_to_local(ppm, X0, Y0)
    img = cv2.warpPerspective(tex, SS_M @ Hm @ tex2plane, (W * SS, H * SS),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return img


# ----------------------------------------------------------------------------- objects

def card_geometry(w_mm, cx, cy, rot):
    """Card mm -> plane mm affine for a card centred at (cx, cy) rotated rot degrees."""
    return Tm(cx, cy) @ Rm(rot) @ Tm(-w_mm / 2, -CARD_H_MM / 2)


def card_corners(w_mm, A):
    return proj(A, [[0, 0], [w_mm, 0], [w_mm, CARD_H_MM], [0, CARD_H_MM]])


def index_rects(w_mm):
    return {"tl": [[0, 0], [INDEX_W_MM, 0], [INDEX_W_MM, INDEX_H_MM], [0, INDEX_H_MM]],
            "br": [[w_mm - INDEX_W_MM, CARD_H_MM - INDEX_H_MM], [w_mm, CARD_H_MM - INDEX_H_MM],
                   [w_mm, CARD_H_MM], [w_mm - INDEX_W_MM, CARD_H_MM]]}


def inside_poly(poly, pts, margin=2.0):
    c = np.asarray(poly, np.float32).reshape(-1, 1, 2)
    return all(cv2.pointPolygonTest(c, (float(x), float(y)), True) >= margin for x, y in pts)


def convex_overlap(a, b):
    area, _ = cv2.intersectConvexConvex(np.asarray(a, np.float32), np.asarray(b, np.float32))
    return max(float(area), 0.0)


def index_occlusion(cards, w_mm):
    """For each card, {tl, br} fraction of its index area covered by cards placed after it."""
    ppm = 4.0
    out = []
    rects = index_rects(w_mm)
    for i, c in enumerate(cards):
        inv = np.linalg.inv(c["A"])
        occ = {}
        for key, rect in rects.items():
            r = np.asarray(rect)
            ox, oy = r[:, 0].min(), r[:, 1].min()
            mw, mh = int(INDEX_W_MM * ppm), int(INDEX_H_MM * ppm)
            m = np.zeros((mh, mw), np.uint8)
            for d in cards[i + 1:]:
                p = proj(inv, d["poly"])
                p = (p - (ox, oy)) * ppm - 0.5
                cv2.fillPoly(m, [np.round(p * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
            occ[key] = float(np.count_nonzero(m)) / m.size
        out.append(occ)
    return out


def place_cards(rng, n, w_mm):
    """Positions for n cards in the zones; returns a list (in drawing order)."""
    codes = [CODES[i] for i in rng.permutation(52)[:n]]
    zones = {name: poly for name, poly in ZONES}
    znames = [z for z, _ in ZONES]
    card_area = w_mm * CARD_H_MM
    placed = []
    for code in codes:
        for attempt in range(300):
            pair = placed and rng.random() < 0.45
            if pair:
                base = placed[int(rng.integers(len(placed)))]
                zone = base["zone"]
                rot = base["rot"] + U(rng, -25, 25)
                off = np.array([U(rng, 16, 40) * (1 if rng.random() < 0.5 else -1),
                                U(rng, -30, 30)])
                a = math.radians(base["rot"])
                cx = base["cx"] + off[0] * math.cos(a) - off[1] * math.sin(a)
                cy = base["cy"] + off[0] * math.sin(a) + off[1] * math.cos(a)
            else:
                zone = znames[int(rng.integers(len(znames)))]
                if rng.random() < 0.5:
                    rot = U(rng, -180, 180)
                else:
                    rot = 90 * int(rng.integers(-1, 3)) + U(rng, -10, 10)
                zp = np.asarray(zones[zone], float)
                cx = U(rng, zp[:, 0].min(), zp[:, 0].max())
                cy = U(rng, zp[:, 1].min(), zp[:, 1].max())
            rot = (rot + 180) % 360 - 180
            A = card_geometry(w_mm, cx, cy, rot)
            poly = card_corners(w_mm, A)
            if not inside_poly(zones[zone], poly):
                continue
            ok = True
            for d in placed:
                ov = convex_overlap(poly, d["poly"]) / card_area
                if pair and d is base:
                    ok = 0.05 <= ov <= 0.55
                elif ov > 0:
                    ok = False
                if not ok:
                    break
            if not ok:
                continue
            cand = placed + [{"code": code, "zone": zone, "rot": rot, "cx": cx, "cy": cy,
                              "A": A, "poly": poly}]
            occ = index_occlusion(cand, w_mm)
            if all(min(o.values()) <= 0.0 for o in occ):
                placed = cand
                break
    return placed


def draw_chip(rng, d_mm, colour, white_centre, ppm=6.0):
    """Casino chip seen from above: premultiplied BGRA patch centred on the chip."""
    R = d_mm / 2
    n = int(math.ceil((d_mm + 2) * ppm))
    c = (n - 1) / 2
    r = R * ppm
    col = np.float32(colour)
    img = np.zeros((n, n, 3), np.float32)
    img[:] = col
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    dx, dy = xx - c, yy - c
    rad = np.hypot(dx, dy) / r
    ang = (np.degrees(np.arctan2(dx, -dy)) + 360) % 360
    nspots = int(rng.choice([4, 6, 8]))
    phase = U(rng, 0, 360)
    sw = 360 / nspots * U(rng, 0.3, 0.45)
    spot = (((ang - phase) % (360 / nspots)) < sw) & (rad > 0.78)
    spot_col = np.float32([235, 235, 235]) if rng.random() < 0.8 else np.float32(colour)[::-1] * 0.5 + 110
    img[spot] = spot_col
    ring = np.abs(rad - 0.72) < 0.025
    img[ring] = img[ring] * 0.4 + 200 * 0.6
    centre = rad < 0.58
    if white_centre:
        img[centre] = np.float32([228, 236, 240])
        m = text_mask(str(rng.choice(["5", "25", "100", "500", "1K"])), 0.45 * r, 0.14,
                      cv2.FONT_HERSHEY_DUPLEX)
        a = np.zeros((n, n), np.float32)
        stamp(img, a, m, c, c, U(rng, -180, 180), col * 0.8, 1.0)
    else:
        img[centre] = col * 0.85
        img[np.abs(rad - 0.45) < 0.02] = col * 0.6 + 90
    la = math.radians(U(rng, 0, 360))
    light = 1 + 0.08 * (dx * math.cos(la) + dy * math.sin(la)) / r
    edge = np.clip((1.0 - rad) * 12, 0, 1) ** 0.5 * 0.25 + 0.75
    img *= (light * edge)[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(3)
    a = np.zeros((n, n), np.uint8)
    aa_circle(a, (c, c), r, 255)
    return premul(np.clip(img, 0, 255), a.astype(np.float32) / 255)


def draw_hand(rng, ppm=2.0):
    """A dealer's hand and cuff, fingers towards +y, wrist at (0, 0) mm. Returns patch, origin."""
    ox, oy, wmm, hmm = -130.0, -230.0, 260.0, 430.0
    n_w, n_h = int(wmm * ppm), int(hmm * ppm)
    skin = np.float32([U(rng, 95, 165), U(rng, 125, 185), U(rng, 175, 235)])
    m = np.zeros((n_h, n_w), np.uint8)

    def pt(x, y):
        return ((x - ox) * ppm - 0.5, (y - oy) * ppm - 0.5)

    def capsule(x0, y0, ang, length, width):
        a = math.radians(ang)
        x1, y1 = x0 + length * math.sin(a), y0 + length * math.cos(a)
        p0, p1 = pt(x0, y0), pt(x1, y1)
        cv2.line(m, (int(p0[0] * 16), int(p0[1] * 16)), (int(p1[0] * 16), int(p1[1] * 16)), 255,
                 int(width * ppm), cv2.LINE_AA, 4)
        return x1, y1

    spread = U(rng, 0.6, 1.4)
    p = pt(0, 55)
    cv2.ellipse(m, (int(p[0] * 16), int(p[1] * 16)), (int(42 * ppm * 16), int(50 * ppm * 16)),
                0, 0, 360, 255, -1, cv2.LINE_AA, 4)
    tips = []
    for bx, ln, wd, sp in [(-27, 58, 16, -9), (-9, 70, 17, -3), (9, 66, 17, 3), (27, 52, 15, 9)]:
        tips.append(capsule(bx, 88, sp * spread + U(rng, -3, 3), ln * U(rng, 0.9, 1.05), wd))
    capsule(-36, 40, -55 + U(rng, -15, 15), 52, 20)
    hand = m.astype(np.float32) / 255
    cuff = np.zeros_like(m)
    aa_poly(cuff, [[-50, -225], [50, -225], [52, 12], [-52, 12]], 255, ppm, (ox, oy))
    cuffa = cuff.astype(np.float32) / 255
    sleeve = np.float32([235, 235, 232]) if rng.random() < 0.5 else np.float32([32, 30, 30])
    yy = (oy + (np.arange(n_h, dtype=np.float32) + 0.5) / ppm)[:, None]
    xx = (ox + (np.arange(n_w, dtype=np.float32) + 0.5) / ppm)[None, :]
    tone = 1 + 0.10 * lowfreq_noise(rng, n_h, n_w, 25 * ppm) - 0.15 * (np.abs(xx) / 60) ** 2
    img = skin * np.clip(tone, 0.6, 1.2)[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(2.5)
    # lighter nails at the fingertips
    nail = np.float32([200, 205, 235])
    for tx, ty in tips:
        cx, cy = pt(tx, ty)
        r = int(12 * ppm)
        x0, y0 = max(int(cx) - r, 0), max(int(cy) - r, 0)
        x1, y1 = min(int(cx) + r, n_w), min(int(cy) + r, n_h)
        if x1 <= x0 or y1 <= y0:
            continue
        k = np.exp(-(((xx[:, x0:x1] - tx) ** 2 + (yy[y0:y1] - ty) ** 2) / (2 * 5.0 ** 2))) * 0.35
        roi = img[y0:y1, x0:x1]
        roi[:] = roi * (1 - k[..., None]) + nail * k[..., None]
    folds = 1 + 0.08 * np.sin(yy / U(rng, 9, 16) + 2 * lowfreq_noise(rng, n_h, 1, 30 * ppm))
    sl = sleeve * ((1 - 0.22 * (np.abs(xx) / 52) ** 2) * folds)[..., None]
    img = img * (1 - cuffa[..., None]) + sl * cuffa[..., None]
    a = np.maximum(hand, cuffa)
    a = cv2.GaussianBlur(a, (0, 0), 0.6)
    return premul(np.clip(img, 0, 255), a), (ox, oy)


def draw_placard(rng, w_mm, h_mm, ppm=5.0):
    n_w, n_h = int(w_mm * ppm), int(h_mm * ppm)
    paper = np.float32([U(rng, 228, 245)] * 3) + np.float32([0, 2, 4])
    img = np.empty((n_h, n_w, 3), np.float32)
    img[:] = paper
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(2)
    ink = np.float32([30, 30, 160]) if rng.random() < 0.5 else np.float32([25, 25, 25])
    a = np.zeros((n_h, n_w), np.float32)
    lines = [["MIN 10", "MAX 500"], ["RESERVED"], ["TABLE %d" % int(rng.integers(1, 20))],
             ["NO SMOKING"], ["CLOSED"]][int(rng.integers(5))]
    for i, t in enumerate(lines):
        m = text_mask(t, min(n_h / (len(lines) + 1.4), n_w / (len(t) * 0.9 + 1)), 0.12)
        stamp(img, a, m, n_w / 2, n_h * (i + 1) / (len(lines) + 1), 0, ink)
    b = max(1, int(1.2 * ppm))
    cv2.rectangle(img, (b, b), (n_w - 1 - b, n_h - 1 - b), tuple(float(v) for v in ink * 0.5 + paper * 0.5),
                  max(1, int(0.6 * ppm)))
    alpha = np.ones((n_h, n_w), np.float32)
    return premul(np.clip(img, 0, 255), alpha)


def draw_shoe(rng, ppm=3.0):
    """A card shoe: smoked box with a lip and a sliver of the next card's back; centred."""
    wmm, hmm = 160.0, 200.0
    n_w, n_h = int(wmm * ppm), int(hmm * ppm)
    body = np.float32([[30, 28, 34], [25, 25, 80], [22, 22, 22]][int(rng.integers(3))])
    yy = ((np.arange(n_h) + 0.5) / ppm)[:, None]
    xx = ((np.arange(n_w) + 0.5) / ppm)[None, :]
    img = body * (1 + 0.6 * np.exp(-((xx - 40) / 18) ** 2) + 0.25 * (yy / hmm))[..., None]
    img = np.broadcast_to(img, (n_h, n_w, 3)).copy()
    # front lip and the mouth with the next card's back peeking out
    lip = yy > hmm - 30
    img[np.broadcast_to(lip, (n_h, n_w))] *= 1.6
    back = np.float32([[150, 60, 30], [40, 40, 170]][int(rng.integers(2))])
    cx0, cx1 = (wmm - 63) / 2, (wmm + 63) / 2
    strip = (xx > cx0) & (xx < cx1) & (yy > hmm - 26) & (yy < hmm - 26 + U(rng, 10, 18))
    pattern = back * (0.85 + 0.15 * ((np.floor(xx / 2.5) + np.floor(yy / 2.5)) % 2))[..., None]
    border = (xx < cx0 + 3) | (xx > cx1 - 3)
    card = np.where(border[..., None], np.float32([235, 235, 235]), pattern)
    img = np.where(strip[..., None], card, img)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(2)
    a = np.zeros((n_h, n_w), np.uint8)
    aa_poly(a, [[6, 0], [wmm - 6, 0], [wmm, hmm - 35], [wmm - 10, hmm], [10, hmm], [0, hmm - 35]],
            255, ppm)
    return premul(np.clip(img, 0, 255), a.astype(np.float32) / 255)


CHIP_COLOURS = [[30, 30, 185], [40, 130, 40], [25, 25, 25], [150, 70, 30], [120, 40, 110],
                [40, 170, 215], [30, 110, 230], [210, 210, 215], [150, 150, 40]]


def place_chip(img, rng, H_ss, cx, cy, stack=1):
    d = U(rng, 39, 43)
    colour = CHIP_COLOURS[int(rng.integers(len(CHIP_COLOURS)))]
    white_centre = bool(rng.random() < 0.5)
    patch = draw_chip(rng, d, colour, white_centre)
    ppm = 6.0
    n = patch.shape[0]
    for s in range(stack):
        ox, oy = cx + U(rng, -2, 2) * s, cy + U(rng, -2, 2) * s
        M = H_ss @ patch_to_local(ppm, ox - n / ppm / 2, oy - n / ppm / 2)
        shadow(img, patch[:, :, 3], M, (2.5, 3.0), 3.0, 0.45)
        composite(img, patch, M)
    centre_px = proj(np.linalg.inv(SS_M) @ H_ss, [[cx, cy]])[0]
    return {"type": "chip", "centre_mm": [cx, cy], "centre_px": centre_px, "diameter_mm": d,
            "colour_bgr": colour,
            "white_centre": white_centre, "stack": stack}


# ----------------------------------------------------------------------------- photometrics

def photometric(img_ss, rng, glare_targets=()):
    """Downsamples a supersampled float32 frame and applies the camera's look.
    glare_targets: [(name, polygon_px)]; returns (uint8 image, params, names under glare)."""
    H, W = img_ss.shape[0] // SS, img_ss.shape[1] // SS
    img = cv2.resize(img_ss, (W, H), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    exposure = U(rng, 0.88, 1.08)
    lo, hi, ang = U(rng, 0.62, 0.92), U(rng, 0.98, 1.12), U(rng, 0, 360)
    a = math.radians(ang)
    t = ((xx - W / 2) * math.cos(a) + (yy - H / 2) * math.sin(a)) / (0.5 * math.hypot(W, H))
    light = lo + (hi - lo) * (t + 1) / 2
    vig = U(rng, 0.0, 0.3)
    light *= 1 - vig * (((xx - W / 2) ** 2 + (yy - H / 2) ** 2) / ((W / 2) ** 2 + (H / 2) ** 2))
    gains = [U(rng, 0.94, 1.06) for _ in range(3)]
    img *= (light * exposure)[..., None]
    img *= np.float32(gains)
    params = {"exposure": exposure,
              "gradient": {"angle_deg": ang, "min": lo, "max": hi},
              "vignette": vig, "colour_gain_bgr": gains}
    under = []
    if rng.random() < 0.7:
        if glare_targets and rng.random() < 0.6:
            name, poly = glare_targets[int(rng.integers(len(glare_targets)))]
            poly = np.asarray(poly)
            size = float(np.ptp(poly[:, 0]) + np.ptp(poly[:, 1])) / 2
            gx = poly[:, 0].mean() + U(rng, -0.5, 0.5) * size
            gy = poly[:, 1].mean() + U(rng, -0.5, 0.5) * size
        else:
            gx, gy = U(rng, 0.1, 0.9) * W, U(rng, 0.1, 0.9) * H
        ax = U(rng, 0.05, 0.2) * W
        ay = ax * U(rng, 0.3, 0.8)
        gang = U(rng, 0, 180)
        strength = U(rng, 0.25, 0.75)
        c, s = math.cos(math.radians(gang)), math.sin(math.radians(gang))
        u = ((xx - gx) * c + (yy - gy) * s) / ax
        v = (-(xx - gx) * s + (yy - gy) * c) / ay
        g = np.exp(-1.5 * (u * u + v * v) ** 1.2) * strength
        img += (275 - img) * g[..., None]
        for name, poly in glare_targets:
            m = np.zeros((H, W), np.uint8)
            cv2.fillPoly(m, [np.round(np.asarray(poly)).astype(np.int32)], 1)
            if m.any() and float(g[m > 0].max()) > 0.15:
                under.append(name)
        params["glare"] = {"centre_px": [gx, gy], "axes_px": [ax, ay], "angle_deg": gang,
                           "strength": strength}
    else:
        params["glare"] = None
    blur = U(rng, 0.0, 1.2)
    if blur > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    noise = U(rng, 0.0, 6.0)
    n = rng.standard_normal((H, W, 3), dtype=np.float32) * np.float32(noise * 0.8)
    n += rng.standard_normal((H, W, 1), dtype=np.float32) * np.float32(noise * 0.6)
    img += n
    params["blur_sigma"] = blur
    params["noise_sigma"] = noise
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out, params, under


# ----------------------------------------------------------------------------- scenes

_CACHE = {}


def cached(key, fn):
    if key not in _CACHE:
        _CACHE[key] = fn()
    return _CACHE[key]


def bg_path(ctx, name):
    return os.path.join(ctx["tmp"], name + ".npy")


def load_or_build(ctx, name, fn):
    """Backgrounds are built once (stage 1) and shared between workers through ctx["tmp"]."""
    path = bg_path(ctx, name)
    if os.path.exists(path):
        return np.load(path)
    return fn()


def table_for(ctx, k):
    return cached(("table", k), lambda: make_table(ctx["seed"], k, ctx["W"], ctx["H"]))


def table_image(ctx, k):
    return cached(("tableimg", k), lambda: load_or_build(
        ctx, "table_%d" % k, lambda: build_table_image(ctx["seed"], table_for(ctx, k))))


def wheel_pose_for(ctx, p):
    return cached(("wheelpose", p), lambda: make_wheel_pose(ctx["seed"], p, ctx["W"], ctx["H"]))


def wheel_static_for(ctx, p):
    return cached(("wheelstatic", p), lambda: load_or_build(
        ctx, "wheelstatic_%d" % p,
        lambda: to_u8(wheel_static(ctx["seed"], wheel_pose_for(ctx, p), ctx["W"], ctx["H"]))))


def wheel_head_for(ctx, p, layout):
    return cached(("wheelhead", p, layout), lambda: load_or_build(
        ctx, "wheelhead_%d_%s" % (p, layout),
        lambda: wheel_head(ctx["seed"], wheel_pose_for(ctx, p), layout)))


def to_u8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def build_background(ctx, kind, i):
    if kind == "table":
        np.save(bg_path(ctx, "table_%d" % i), build_table_image(ctx["seed"], table_for(ctx, i)))
    else:
        wp = wheel_pose_for(ctx, i)
        np.save(bg_path(ctx, "wheelstatic_%d" % i), to_u8(wheel_static(ctx["seed"], wp, ctx["W"], ctx["H"])))
        for layout in ("european", "american"):
            np.save(bg_path(ctx, "wheelhead_%d_%s" % (i, layout)), wheel_head(ctx["seed"], wp, layout))
    return kind, i


def face_for(ctx, deck, code):
    raw = cached(("face", deck, code), lambda: cv2.imread(
        os.path.join(ctx["out"], "decks", deck, "faces", code + ".png"), cv2.IMREAD_UNCHANGED))
    return face_premul(raw)


def px(H, pts):
    return proj(H, pts).tolist()


def render_scene(ctx, deck, n):
    seed = ctx["seed"]
    rng = seed_rng(seed, "scene", zlib.crc32(deck.encode()), n)
    k = n % ctx["tables"]
    tb = table_for(ctx, k)
    Hm = tb["H"]
    H_ss = SS_M @ Hm
    img = table_image(ctx, k).astype(np.float32)
    w_mm = CARD_H_MM * ctx["faces"][deck][0] / ctx["faces"][deck][1]
    n_cards = int(rng.integers(1, 7))
    cards = place_cards(rng, n_cards, w_mm)
    occ = index_occlusion(cards, w_mm)
    light_dir = math.radians(U(rng, 0, 360))
    # a few chips on the table, never touching a card
    distractors = []
    n_chips = int(rng.integers(0, 4)) if rng.random() < 0.5 else 0
    for _ in range(n_chips):
        for attempt in range(50):
            cx, cy = U(rng, 270, 730), U(rng, 10, 265)
            circ = [[cx + 28 * math.cos(t), cy + 28 * math.sin(t)] for t in np.linspace(0, 6.28, 12)]
            if all(convex_overlap(circ, c["poly"]) == 0 for c in cards):
                distractors.append(place_chip(img, rng, H_ss, cx, cy, int(rng.integers(1, 4))))
                break
    labels = []
    for i, c in enumerate(cards):
        face = face_for(ctx, deck, c["code"])
        fh, fw = face.shape[:2]
        # paper is not a perfect reflector; slight shading across the card
        g = U(rng, 0.9, 0.99)
        ga = math.radians(U(rng, 0, 360))
        yy, xx = np.mgrid[0:fh, 0:fw].astype(np.float32)
        grad = g * (1 + U(rng, -0.05, 0.05) * ((xx - fw / 2) * math.cos(ga) + (yy - fh / 2) * math.sin(ga)) / fh)
        face[:, :, :3] *= grad[..., None]
        face_to_card = Sm(w_mm / fw, CARD_H_MM / fh) @ Tm(0.5, 0.5)
        M = H_ss @ c["A"] @ face_to_card
        off = U(rng, 0.6, 1.8) * SS * 1.1
        shadow(img, face[:, :, 3], M, (off * math.cos(light_dir), off * math.sin(light_dir)),
               1.4 * SS, U(rng, 0.3, 0.5))
        composite(img, face, M)
        vis = [key for key in ("tl", "br") if occ[i][key] <= 0.0]
        labels.append({"card": c["code"], "zone": c["zone"],
                       "corners_px": px(Hm, c["poly"]),
                       "rotation_deg": c["rot"], "visible_indices": vis,
                       "index_occlusion": occ[i]})
    targets = [(i, lab["corners_px"]) for i, lab in enumerate(labels)]
    out, phot, under = photometric(img, rng, targets)
    if phot["glare"] is not None:
        phot["glare"]["over_cards"] = under
    label = {"deck": deck, "table": k, "seed": seed, "index": n,
             "card_mm": {"width": w_mm, "height": CARD_H_MM},
             "cards": labels, "distractors": distractors, "photometric": phot}
    base = os.path.join(ctx["out"], "scenes", deck, str(n))
    write_png(base + ".png", out, photo=True)
    write_json(base + ".json", label)
    return base


def render_layout(ctx, k):
    """Table k as its camera sees it with nothing on it and no glare (tables/<k>.png): the
    picture `croupier demo` lays the dealt cards on, and a frame for `calibrate table`."""
    img = table_image(ctx, k).astype(np.float32)
    H, W = img.shape[0] // SS, img.shape[1] // SS
    out = cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)
    out = cv2.GaussianBlur(out, (0, 0), 0.5)
    write_png(os.path.join(ctx["out"], "tables", "%d.png" % k),
              np.clip(np.rint(out), 0, 255).astype(np.uint8), photo=True)


def render_empty(ctx, n):
    seed = ctx["seed"]
    rng = seed_rng(seed, "empty", n)
    k = n % ctx["tables"]
    tb = table_for(ctx, k)
    Hm = tb["H"]
    H_ss = SS_M @ Hm
    img = table_image(ctx, k).astype(np.float32)
    distractors = []
    # the shoe, at the dealer's side
    if rng.random() < 0.6:
        patch = draw_shoe(rng)
        ppm = 3.0
        sx = U(rng, 300, 380) if rng.random() < 0.5 else U(rng, 620, 700)
        sy = U(rng, -60, 30)
        rot = U(rng, -25, 25) + 180
        hw, hh = patch.shape[1] / ppm / 2, patch.shape[0] / ppm / 2
        A = Tm(sx, sy) @ Rm(rot) @ Tm(-hw, -hh)
        M = H_ss @ A @ patch_to_local(ppm, 0, 0)
        shadow(img, patch[:, :, 3], M, (6, 8), 8, 0.5)
        composite(img, patch, M)
        distractors.append({"type": "shoe", "centre_mm": [sx, sy], "rotation_deg": rot,
                            "corners_px": px(Hm, proj(A, [[0, 0], [2 * hw, 0], [2 * hw, 2 * hh], [0, 2 * hh]]))})
    # chips, some in stacks
    for _ in range(int(rng.integers(2, 11))):
        distractors.append(place_chip(img, rng, H_ss, U(rng, 300, 700), U(rng, 20, 245),
                                      int(rng.integers(1, 5)) if rng.random() < 0.3 else 1))
    # a paper placard of a non-card size
    if rng.random() < 0.65:
        sizes = [(100, 40), (120, 45), (150, 60), (90, 30), (70, 70), (160, 50)]
        pw, ph = sizes[int(rng.integers(len(sizes)))]
        patch = draw_placard(rng, pw, ph)
        ppm = 5.0
        cx, cy, rot = U(rng, 350, 650), U(rng, 50, 220), U(rng, -180, 180)
        A = Tm(cx, cy) @ Rm(rot) @ Tm(-pw / 2, -ph / 2)
        M = H_ss @ A @ patch_to_local(ppm, 0, 0)
        shadow(img, patch[:, :, 3], M, (2, 2), 2.5, 0.4)
        composite(img, patch, M)
        distractors.append({"type": "placard", "size_mm": [pw, ph], "rotation_deg": rot,
                            "corners_px": px(Hm, proj(A, [[0, 0], [pw, 0], [pw, ph], [0, ph]]))})
    # the dealer's hand, reaching in from the dealer's side
    if rng.random() < 0.7:
        ppm = 2.0
        patch, (ox, oy) = draw_hand(rng, ppm)
        hx, hy = U(rng, 340, 660), U(rng, -40, 130)
        rot = U(rng, -45, 45)
        A = Tm(hx, hy) @ Rm(rot)
        M = H_ss @ A @ patch_to_local(ppm, ox, oy)
        shadow(img, patch[:, :, 3], M, (U(rng, 10, 30), U(rng, 10, 30)), 10, 0.4)
        composite(img, patch, M)
        distractors.append({"type": "hand", "wrist_mm": [hx, hy], "rotation_deg": rot,
                            "fingertips_px": px(Hm, proj(A, [[0, 150]]))[0]})
    targets = [(i, d["corners_px"]) for i, d in enumerate(distractors) if "corners_px" in d]
    out, phot, _ = photometric(img, rng, targets)
    label = {"frame": "empty", "table": k, "seed": seed, "index": n, "cards": [],
             "distractors": distractors, "photometric": phot}
    base = os.path.join(ctx["out"], "empty", str(n))
    write_png(base + ".png", out, photo=True)
    write_json(base + ".json", label)
    return base


# ----------------------------------------------------------------------------- wheel

def make_wheel_pose(seed, p, W, H):
    rng = seed_rng(seed, "wheelpose", p)
    R = H * U(rng, 0.43, 0.475)
    cx = W / 2 + U(rng, -0.1, 0.1) * W
    cy = H / 2 + U(rng, -0.02, 0.02) * H
    tilt, axis = U(rng, 3, 10), U(rng, 0, 360)
    f = (W / 2) / math.tan(math.radians(U(rng, 25, 35)))
    Rw = Rz(axis) @ Rx(tilt) @ Rz(-axis)
    table = p % 3
    for _ in range(40):
        K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]])
        Hw = K @ np.c_[Rw[:, 0], Rw[:, 1], [0, 0, f]]
        ring = proj(Hw, [[R * 1.05 * math.sin(t), -R * 1.05 * math.cos(t)]
                         for t in np.linspace(0, 2 * math.pi, 72)])
        if ring[:, 1].min() >= 2 and ring[:, 1].max() <= H - 3 and ring[:, 0].min() >= 2 \
                and ring[:, 0].max() <= W - 3:
            break
        R *= 0.98
    Hw = Hw / Hw[2, 2]
    centre = proj(Hw, [[0, 0]])[0]
    return {
        "pose": p, "R": R, "Hw": Hw, "table": table,
        "cal": {
            "version": 1, "pose": p, "image": {"width": W, "height": H},
            "centre_px": centre.tolist(),
            "pocket_ring_px": {"inner": WR["pockets"][0] * R, "outer": WR["pockets"][1] * R},
            "ball_track_px": {"inner": WR["track"][0] * R, "outer": WR["track"][1] * R},
            "number_ring_px": {"inner": WR["numbers"][0] * R, "outer": WR["numbers"][1] * R},
            "rim_px": {"inner": WR["rim"][0] * R, "outer": WR["rim"][1] * R},
            "tilt_deg": tilt, "tilt_axis_deg": axis,
            "homography_wheel_to_px": Exact(Hw.tolist()),
        },
    }


def polar_wood(rng, size, r_px, base, grain_along="tangent", stripes=60.0):
    """Wood-like BGR texture in a size x size canvas, centred, made in polar coordinates
    (grain along circles, or radial like a sunburst veneer)."""
    na, nr = 1440, int(r_px) + 4
    ang_n = lowfreq_noise(rng, na, nr, 20 if grain_along == "tangent" else 60)
    fine = cv2.blur(rng.standard_normal((na, nr), dtype=np.float32), (1, 3) if grain_along == "tangent" else (9, 1))
    rr = np.arange(nr, dtype=np.float32)[None, :]
    if grain_along == "tangent":
        g = np.sin(rr / nr * stripes + 1.8 * ang_n)
    else:
        aa = np.arange(na, dtype=np.float32)[:, None]
        g = np.sin(aa / na * stripes * 6 + 0.6 * ang_n)
    val = 1 + 0.07 * g + 0.05 * fine + (0.04 if grain_along == "tangent" else 0.015) * ang_n
    polar = np.float32(base) * val[..., None]
    polar = np.concatenate([polar, polar[:1]], 0)  # wrap the angle for interpolation
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    rho = np.minimum(np.hypot(xx - c, yy - c), nr - 1)
    phi = (np.arctan2(yy - c, xx - c) % np.float32(2 * np.pi)) * np.float32(na / (2 * np.pi))
    return cv2.remap(polar, rho.astype(np.float32), phi.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def wheel_static(seed, wp, W, H):
    """Background and the fixed bowl (rim, ball track, deflectors) for a wheel camera,
    supersampled float32 BGR."""
    rng = seed_rng(seed, "wheelbowl", wp["pose"])
    R = wp["R"]
    s = SS * 1.0
    img = np.empty((H * SS, W * SS, 3), np.float32)
    bg = [np.float32([40, 95, 25]), np.float32([30, 50, 85]), np.float32([70, 50, 25])][wp["table"]]
    img[:] = bg
    img *= (1 + 0.025 * lowfreq_noise(rng, H * SS, W * SS, 250))[..., None]
    img += cv2.GaussianBlur(rng.standard_normal((H * SS, W * SS), dtype=np.float32), (0, 0), 0.8)[..., None] * 4
    Rc = 1.12 * R
    n = int(math.ceil(2 * Rc * s))
    c = (n - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    rad = np.hypot(xx - c, yy - c) / (R * s)
    ang = np.arctan2(xx - c, -(yy - c))
    lite = np.cos(ang - math.radians(U(rng, 0, 360)))
    wood_col = [np.float32([25, 60, 120]), np.float32([20, 40, 80]), np.float32([35, 75, 140])][int(rng.integers(3))]
    wood = polar_wood(rng, n, Rc * s, wood_col, "tangent", 90)
    col = np.zeros((n, n, 3), np.float32)
    # cabinet bevel 1.0..1.12
    cab = wood * 0.55 * (0.8 + 0.2 * np.clip((1.12 - rad) / 0.12, 0, 1))[..., None]
    col = np.where((rad >= 1.0)[..., None], cab, col)
    # rim
    r0, r1 = WR["rim"]
    t = np.clip((rad - r0) / (r1 - r0), 0, 1)
    rim = wood * (0.8 + 0.35 * np.sin(np.pi * t) + 0.12 * lite)[..., None]
    col = np.where(((rad >= r0) & (rad < r1))[..., None], rim, col)
    # ball track: polished, banked
    t0, t1 = WR["track"]
    t = np.clip((rad - t0) / (t1 - t0), 0, 1)
    track_col = wood_col * U(rng, 0.9, 1.3)
    trk = track_col * (0.75 + 0.35 * t + 0.15 * lite)[..., None] \
        + (45 * np.exp(-((t - 0.6) / 0.08) ** 2) * (0.6 + 0.4 * lite))[..., None]
    col = np.where(((rad >= t0) & (rad < t1))[..., None], trk, col)
    # lower bowl, sloping in
    b0, b1 = WR["bowl"]
    t = np.clip((rad - b0) / (b1 - b0), 0, 1)
    bowl = np.float32([150, 150, 150]) * (0.35 + 0.3 * t + 0.1 * lite)[..., None]
    col = np.where(((rad >= b0 - 0.01) & (rad < b1))[..., None], bowl, col)
    for edge, v in ((1.0, 150), (r0, 210), (t0, 120)):
        ring = np.exp(-((rad - edge) * R * s / 1.2) ** 2)
        col += (v * ring * (0.7 + 0.3 * lite))[..., None] * np.float32([0.75, 0.9, 1.0])
    alpha = np.clip((1.12 - rad) * R * s, 0, 1) * np.clip((rad - (b0 - 0.01)) * R * s, 0, 1)
    # deflectors ("diamonds")
    dm = np.zeros((n, n), np.uint8)
    for i in range(8):
        a = math.radians(i * 45 + 22.5)
        rmid = 0.80 * R * s
        ex = (0.045 if i % 2 == 0 else 0.025) * R * s
        et = (0.018 if i % 2 == 0 else 0.03) * R * s
        cxp, cyp = c + rmid * math.sin(a), c - rmid * math.cos(a)
        pts = [(cxp + ex * math.sin(a), cyp - ex * math.cos(a)),
               (cxp + et * math.cos(a), cyp + et * math.sin(a)),
               (cxp - ex * math.sin(a), cyp + ex * math.cos(a)),
               (cxp - et * math.cos(a), cyp - et * math.sin(a))]
        cv2.fillPoly(dm, [np.round(np.asarray(pts) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    dmf = dm.astype(np.float32) / 255
    metal = np.float32([200, 205, 210]) * (0.8 + 0.25 * lite)[..., None]
    col = col * (1 - dmf[..., None]) + metal * dmf[..., None]
    # soft shadow cast by the rim onto the track
    patch = premul(np.clip(col, 0, 255), alpha)
    M = SS_M @ wp["Hw"] @ np.array([[1 / s, 0, -Rc + 0.5 / s], [0, 1 / s, -Rc + 0.5 / s], [0, 0, 1]])
    shadow(img, alpha, M, (6, 8), 10, 0.5)
    composite(img, patch, M)
    return img


def wheel_head(seed, wp, layout):
    """The rotating wheel head (numbers, pockets, cone, turret), zero pocket at the top.
    Premultiplied BGRA canvas, SS px per wheel px, centred."""
    rng = seed_rng(seed, "wheelhead", wp["pose"], 0 if layout == "european" else 1)
    order = EURO if layout == "european" else AMER
    N = len(order)
    R = wp["R"]
    s = float(SS)
    Rc = head_radius(R)
    n = int(math.ceil(2 * Rc * s))
    c = (n - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    rad = np.hypot(xx - c, yy - c) / (R * s)
    ang = (np.degrees(np.arctan2(xx - c, -(yy - c))) + 360) % 360
    pw = 360.0 / N
    idx = np.floor(((ang + pw / 2) % 360) / pw).astype(np.int32) % N
    red = np.float32([32, 30, 175])
    black = np.float32([28, 26, 26])
    green = np.float32([40, 120, 25])
    pal = np.array([green if v in ("0", "00") else (red if int(v) in REDS else black) for v in order],
                   np.float32)
    colmap = pal[idx]
    lite_dir = math.radians(U(rng, 0, 360))
    lite = np.cos(np.radians(ang) - lite_dir)
    col = np.zeros((n, n, 3), np.float32)
    n0, n1 = WR["numbers"]
    p0 = WR["pockets"][0]
    numring = (rad >= n0) & (rad < n1)
    col = np.where(numring[..., None], colmap * (0.95 + 0.08 * lite)[..., None], col)
    pocket = (rad >= p0) & (rad < n0)
    t = np.clip((rad - p0) / (n0 - p0), 0, 1)
    depth = 0.55 + 0.45 * np.clip(np.sin(np.pi * t), 0, 1) ** 0.5
    col = np.where(pocket[..., None], colmap * (0.75 * depth)[..., None], col)
    # cone with wood, turret drawn on top
    wood_col = [np.float32([30, 70, 130]), np.float32([25, 45, 90]), np.float32([60, 110, 160])][int(rng.integers(3))]
    wood = polar_wood(rng, n, Rc * s, wood_col, "radial", 12)
    cone = rad < p0
    cshade = 0.75 + 0.3 * (rad / p0) + 0.2 * lite * (rad / p0)
    col = np.where(cone[..., None], wood * cshade[..., None], col)
    # frets (pocket separators) and number separators
    bound = np.abs(((ang - pw / 2) % pw + pw / 2) % pw - pw / 2)  # degrees to nearest boundary
    bd_px = np.radians(bound) * rad * R * s
    fret = np.clip(1.6 * s - bd_px, 0, 1) * pocket
    sep = np.clip(0.7 * s - bd_px, 0, 1) * numring
    metal = np.float32([205, 210, 215]) * (0.85 + 0.2 * lite)[..., None]
    col = col * (1 - fret[..., None]) + metal * fret[..., None]
    gold = np.float32([80, 170, 215])
    col = col * (1 - sep[..., None]) + gold * sep[..., None]
    for edge, w in ((p0, 1.8), (n0, 1.6), (n1, 1.2)):
        rr = np.clip(w * s - np.abs(rad - edge) * R * s, 0, 1)
        col = col * (1 - rr[..., None]) + metal * rr[..., None]
    alpha = np.clip((n1 - rad) * R * s + 0.5, 0, 1)
    # numbers, reading from outside, top towards the rim
    th = 0.05 * R * s
    max_w = 0.72 * 2 * math.pi * n0 * R * s / N
    tb = np.zeros((n, n, 3), np.float32)
    ta = np.zeros((n, n), np.float32)
    for i, v in enumerate(order):
        m = text_mask(v, th, 0.14, cv2.FONT_HERSHEY_SIMPLEX, max_w)
        a = i * pw
        rm = (n0 + n1) / 2 * R * s
        stamp(tb, ta, m, c + rm * math.sin(math.radians(a)), c - rm * math.cos(math.radians(a)), a,
              np.float32([235, 240, 240]))
    col = col * (1 - ta[..., None]) + tb
    # turret: hub and four arms with knobs
    tm = np.zeros((n, n), np.uint8)
    arm = 0.2 * R * s
    arot = U(rng, 0, 90)
    for j in range(4):
        a = math.radians(arot + 90 * j)
        e = (c + arm * math.sin(a), c - arm * math.cos(a))
        cv2.line(tm, (int(c * 16), int(c * 16)), (int(e[0] * 16), int(e[1] * 16)), 255,
                 max(1, int(0.022 * R * s)), cv2.LINE_AA, 4)
        aa_circle(tm, e, 0.032 * R * s, 255)
    aa_circle(tm, (c, c), 0.065 * R * s, 255)
    tmf = tm.astype(np.float32) / 255
    dx, dy = (xx - c) / (0.2 * R * s), (yy - c) / (0.2 * R * s)
    shine = 0.75 + 0.35 * np.exp(-((dx - 0.3 * math.sin(lite_dir)) ** 2 + (dy + 0.3 * math.cos(lite_dir)) ** 2) * 3)
    tmetal = np.float32([190, 200, 210]) * shine[..., None]
    # turret's shadow on the cone
    sh = cv2.GaussianBlur(np.roll(np.roll(tmf, int(3 * s), 0), int(3 * s), 1), (0, 0), 2 * s)
    col *= (1 - 0.45 * sh * cone)[..., None]
    col = col * (1 - tmf[..., None]) + tmetal * tmf[..., None]
    col += rng.standard_normal(col.shape, dtype=np.float32) * np.float32(2)
    return premul(np.clip(col, 0, 255), alpha)


def head_radius(R):
    return WR["numbers"][1] * R + 2


def draw_ball(r_px, light_dir, s):
    """Ivory ball with a highlight; premultiplied BGRA patch, SS px per wheel px, centred."""
    rr = r_px * s
    n = int(math.ceil(2 * rr + 4))
    c = (n - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    dx, dy = (xx - c) / rr, (yy - c) / rr
    d2 = dx * dx + dy * dy
    z = np.sqrt(np.clip(1 - d2, 0, 1))
    lx, ly, lz = 0.45 * math.sin(light_dir), -0.45 * math.cos(light_dir), 0.77
    lam = np.clip(dx * lx + dy * ly + z * lz, 0, 1)
    base = np.float32([205, 228, 238])
    col = base * (0.35 + 0.7 * lam)[..., None]
    spec = np.exp(-(((dx - lx * 0.9) ** 2 + (dy - ly * 0.9) ** 2) / 0.03))
    col += (255 * 0.8 * spec)[..., None]
    a = np.clip((1 - np.sqrt(d2)) * rr + 0.5, 0, 1)
    return premul(np.clip(col, 0, 255), a)


def spin_blur(head, deg):
    """The wheel head still turning during the exposure: the average of its turns over `deg`
    degrees (premultiplied, so the average is exact at the alpha edge too)."""
    if deg < 0.05:
        return head
    n = head.shape[0]
    c = (n - 1) / 2
    k = max(3, int(math.ceil(deg / 0.25)) | 1)
    acc = np.zeros_like(head)
    for j in range(k):
        M = cv2.getRotationMatrix2D((c, c), deg * (j / (k - 1) - 0.5), 1.0)
        acc += cv2.warpAffine(head, M, (n, n), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    return acc / np.float32(k)


def arc_blur(patch, length_px, angle_deg):
    """A premultiplied patch smeared along the direction `angle_deg` (clockwise from image
    right) over `length_px`: the ball carried along by the turning head."""
    if length_px < 0.5:
        return patch
    pad = int(math.ceil(length_px / 2)) + 1
    p = cv2.copyMakeBorder(patch, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
    k = 2 * pad + 1
    kern = np.zeros((k, k), np.float32)
    a = math.radians(angle_deg)
    for t in np.linspace(-length_px / 2, length_px / 2, max(3, int(length_px * 2))):
        kern[int(round(pad + t * math.sin(a))), int(round(pad + t * math.cos(a)))] += 1
    return cv2.filter2D(p, -1, kern / kern.sum(), borderType=cv2.BORDER_CONSTANT)


def render_wheel(ctx, n):
    seed = ctx["seed"]
    rng = seed_rng(seed, "wheel", n)
    # The head usually still turns when the ball has come to rest in its pocket (and while it
    # runs on the track): a fraction of a degree to a few degrees of blur at 1/60 s. Drawn from
    # its own stream so every other draw of the frame stays what it was.
    spin_rng = seed_rng(seed, "wheelspin", n)
    spin = U(spin_rng, 0.0, 3.0) if spin_rng.random() < 0.6 else 0.0
    p = n % 3
    layout = "european" if n % 2 == 0 else "american"
    wp = wheel_pose_for(ctx, p)
    head = wheel_head_for(ctx, p, layout)
    Rc = head_radius(wp["R"])
    order = EURO if layout == "european" else AMER
    N = len(order)
    R = wp["R"]
    Hw = wp["Hw"]
    H_ss = SS_M @ Hw
    s = float(SS)
    img = wheel_static_for(ctx, p).astype(np.float32)
    rot = U(rng, 0, 360)
    M = H_ss @ Rm(rot) @ np.array([[1 / s, 0, -Rc + 0.5 / s], [0, 1 / s, -Rc + 0.5 / s], [0, 0, 1]])
    composite(img, spin_blur(head, spin), M)
    # the ball
    u = rng.random()
    state = "pocket" if u >= 0.15 else ("track" if u >= 0.06 else "absent")
    ball_r = 0.032 * R
    light_dir = math.radians(U(rng, 0, 360))
    number, pocket_index, ball_xy = None, None, None
    if state == "pocket":
        pocket_index = int(rng.integers(N))
        number = order[pocket_index]
        a = rot + (pocket_index + U(rng, -0.18, 0.18)) * 360 / N
        p0, p1 = WR["pockets"]
        r = U(rng, p0 * R + ball_r * 1.2, p1 * R - ball_r * 1.05)
        if rng.random() < 0.6:
            r = p1 * R - ball_r * U(rng, 1.05, 1.4)
    elif state == "track":
        a = U(rng, 0, 360)
        r = U(rng, WR["track"][0] * R + ball_r * 1.5, WR["track"][1] * R - ball_r * 1.2)
    if state != "absent":
        ball_xy = (r * math.sin(math.radians(a)), -r * math.cos(math.radians(a)))
        ball = draw_ball(ball_r, light_dir, s)
        if state == "pocket":
            # carried by the head: along the tangent, clockwise (y down in the patch)
            ball = arc_blur(ball, r * math.radians(spin) * s, a)
        bn = ball.shape[0]
        Mb = H_ss @ Tm(ball_xy[0], ball_xy[1]) @ np.array(
            [[1 / s, 0, -(bn - 1) / 2 / s], [0, 1 / s, -(bn - 1) / 2 / s], [0, 0, 1]])
        off = 0.5 * ball_r * s
        shadow(img, ball[:, :, 3], Mb, (-off * math.sin(light_dir), off * math.cos(light_dir)),
               0.35 * ball_r * s, 0.6)
        composite(img, ball, Mb)
    centre = proj(Hw, [[0, 0]])[0]
    pm = (WR["pockets"][0] + WR["pockets"][1]) / 2 * R
    z = proj(Hw, [[pm * math.sin(math.radians(rot)), -pm * math.cos(math.radians(rot))]])[0]
    zero_angle = (math.degrees(math.atan2(z[0] - centre[0], -(z[1] - centre[1]))) + 360) % 360
    targets = []
    if ball_xy is not None:
        bp = proj(Hw, [ball_xy])[0]
        targets = [("ball", [[bp[0] - 3 * ball_r, bp[1] - 3 * ball_r], [bp[0] + 3 * ball_r, bp[1] - 3 * ball_r],
                             [bp[0] + 3 * ball_r, bp[1] + 3 * ball_r], [bp[0] - 3 * ball_r, bp[1] + 3 * ball_r]])]
    out, phot, under = photometric(img, rng, targets)
    if phot["glare"] is not None:
        phot["glare"]["over_ball"] = "ball" in under
    cal = wp["cal"]
    label = {
        "frame": "wheel", "seed": seed, "index": n, "pose": p, "layout": layout,
        "number": number,
        "ball": {"state": state, "centre_px": proj(Hw, [ball_xy])[0].tolist() if ball_xy else None,
                 "radius_px": ball_r, "pocket_index": pocket_index},
        "geometry": {"layout": layout, "centre_px": cal["centre_px"],
                     "pocket_ring_px": cal["pocket_ring_px"], "ball_track_px": cal["ball_track_px"],
                     "zero_angle_deg": zero_angle, "rotation_deg": rot},
        "photometric": phot,
        "spin_blur_deg": spin,
    }
    base = os.path.join(ctx["out"], "wheel", str(n))
    write_png(base + ".png", out, photo=True)
    write_json(base + ".json", label)
    return base


# ----------------------------------------------------------------------------- driver

def _init_worker():
    cv2.setNumThreads(1)


def run_task(task):
    ctx, kind, a, b = task
    if kind == "face":
        return render_face(a)
    if kind == "bg":
        return build_background(ctx, a, b)
    if kind == "scene":
        return render_scene(ctx, a, b)
    if kind == "empty":
        return render_empty(ctx, a)
    if kind == "layout":
        return render_layout(ctx, a)
    if kind == "wheel":
        return render_wheel(ctx, a)
    raise ValueError(kind)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--decks", default="all", help="all, or a comma-separated list of deck names")
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--scenes", type=int, default=60, help="scenes per deck")
    ap.add_argument("--empty", type=int, default=200, help="empty-table frames in all")
    ap.add_argument("--wheel", type=int, default=300, help="roulette frames in all")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    m = re.fullmatch(r"(\d+)x(\d+)", a.size)
    if not m:
        ap.error("--size must be WxH")
    a.W, a.H = int(m.group(1)), int(m.group(2))
    if a.seed < 0 or a.tables < 1 or min(a.scenes, a.empty, a.wheel) < 0 or a.jobs < 1:
        ap.error("seed, counts and jobs must not be negative (tables and jobs at least 1)")
    return a


def package_version(pkg):
    try:
        p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        return p.stdout.strip() or None
    except OSError:
        return None


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    t_start = time.monotonic()
    if shutil.which("rsvg-convert") is None:
        sys.exit("synth: rsvg-convert not found (apt-get install librsvg2-bin)")
    survey = survey_decks()
    usable = [d for d in survey if d["usable"]]
    if a.decks == "all":
        chosen = usable
    else:
        names = [re.sub(r"^svg-", "", x.strip()) for x in a.decks.split(",") if x.strip()]
        by = {d["name"]: d for d in survey}
        chosen = []
        for nm in names:
            if nm not in by:
                sys.exit("synth: no deck %r under %s (usable: %s)" % (nm, DECK_ROOT, ", ".join(d["name"] for d in usable)))
            if not by[nm]["usable"]:
                sys.exit("synth: deck %r is not usable: %s" % (nm, by[nm]["reason"]))
            if by[nm] not in chosen:
                chosen.append(by[nm])
    if a.scenes > 0 and not chosen:
        sys.exit("synth: no usable deck (is kdegames-card-data-kf5 installed?)")
    out = os.path.abspath(a.out)
    for sub in ("decks", "tables", "scenes", "empty", "wheel"):
        p = os.path.join(out, sub)
        if os.path.isdir(p):
            shutil.rmtree(p)
    os.makedirs(out, exist_ok=True)
    for sub in ("tables", "empty", "wheel"):
        os.makedirs(os.path.join(out, sub))
    tmp = tempfile.mkdtemp(prefix="croupier-synth-")
    ctx = {"seed": a.seed, "W": a.W, "H": a.H, "tables": a.tables, "out": out, "faces": {},
           "tmp": tmp}
    pool = multiprocessing.get_context("fork").Pool(a.jobs, initializer=_init_worker)
    try:
        # 1. card faces, and the backgrounds (empty tables, wheel bowls and heads) shared by
        #    the frames, each built once
        face_tasks, deck_meta = [], []
        for d in chosen:
            svg = os.path.join(tmp, d["name"] + ".svg")
            with open(svg, "w", encoding="utf-8") as f:
                f.write(read_svg(d["svgz"]))
            # zoom so that the card is FACE_H px tall: a coarse probe, then a finer one
            zoom = FACE_H / alpha_crop(rsvg(svg, "1_spade", 1.0)).shape[0]
            probe = alpha_crop(rsvg(svg, "1_spade", zoom * 2))
            zoom = FACE_H * zoom * 2 / probe.shape[0]
            fw = int(round(probe.shape[1] * FACE_H / probe.shape[0]))
            fdir = os.path.join(out, "decks", d["name"], "faces")
            os.makedirs(fdir)
            ctx["faces"][d["name"]] = (fw, FACE_H)
            for c in CODES:
                face_tasks.append((svg, d["ids"][c], zoom, fw, os.path.join(fdir, c + ".png")))
            if d["back_id"]:
                face_tasks.append((svg, d["back_id"], zoom, fw, os.path.join(out, "decks", d["name"], "back.png")))
        stage1 = [(ctx, "bg", "table", k) for k in range(a.tables) if a.scenes * len(chosen) + a.empty > 0]
        stage1 += [(ctx, "bg", "wheel", p) for p in range(3) if a.wheel > 0]
        stage1 += [(ctx, "face", t, None) for t in face_tasks]
        sizes = {}
        for r in pool.imap_unordered(run_task, stage1, chunksize=1):
            if len(r) == 3:
                sizes[r[0]] = (r[1], r[2])
        for d in chosen:
            fdir = os.path.join(out, "decks", d["name"], "faces")
            fw = ctx["faces"][d["name"]][0]
            # a face whose rendered card is not the deck's shape would be stretched: report it
            odd = []
            for c in CODES:
                w, h = sizes[os.path.join(fdir, c + ".png")]
                if abs(w * FACE_H / h - fw) > 3:
                    odd.append(c)
            deck_meta.append({"name": d["name"], "source": d["svgz"],
                              "face_px": {"width": fw, "height": FACE_H},
                              "card_mm": {"width": CARD_H_MM * fw / FACE_H, "height": CARD_H_MM},
                              "back": d["back_id"] is not None, "odd_shape_faces": odd})
        t_faces = time.monotonic()
        # 2. tables
        tables = []
        for k in range(a.tables):
            tb = make_table(a.seed, k, a.W, a.H)
            write_json(os.path.join(out, "tables", "%d.json" % k), tb["cal"])
            tables.append(tb["extra"])
        # 3. wheel poses
        for p in range(3):
            wp = make_wheel_pose(a.seed, p, a.W, a.H)
            write_json(os.path.join(out, "wheel", "pose_%d.json" % p), wp["cal"])
        # 4. frames
        tasks = []
        for d in chosen:
            os.makedirs(os.path.join(out, "scenes", d["name"]))
            for n in range(a.scenes):
                tasks.append((ctx, "scene", d["name"], n))
        tasks += [(ctx, "layout", k, None) for k in range(a.tables)]
        tasks += [(ctx, "empty", n, None) for n in range(a.empty)]
        tasks += [(ctx, "wheel", n, None) for n in range(a.wheel)]
        done = 0
        for _ in pool.imap_unordered(run_task, tasks, chunksize=4):
            done += 1
            if done % 100 == 0 or done == len(tasks):
                print("synth: %d/%d frames (%.0f s)" % (done, len(tasks), time.monotonic() - t_start),
                      file=sys.stderr, flush=True)
    finally:
        pool.close()
        pool.join()
        shutil.rmtree(tmp, ignore_errors=True)
    manifest = {
        "generator": "tests/vision/synth.py", "version": VERSION, "seed": a.seed,
        "args": {"seed": a.seed, "decks": a.decks, "tables": a.tables, "scenes": a.scenes,
                 "empty": a.empty, "wheel": a.wheel, "size": a.size},
        "deck_source": {"package": "kdegames-card-data-kf5",
                        "version": package_version("kdegames-card-data-kf5"), "root": DECK_ROOT},
        "decks": deck_meta,
        "skipped_decks": [{"name": d["name"], "reason": d["reason"]} for d in survey if not d["usable"]],
        "counts": {"faces": len(chosen) * 52, "backs": sum(1 for d in chosen if d["back_id"]),
                   "tables": a.tables, "scenes": len(chosen) * a.scenes, "empty": a.empty,
                   "wheel": a.wheel, "wheel_poses": 3},
        "tables": tables,
        "conventions": {
            "pixels": "x right, y down; pixel centres at integer coordinates",
            "table_mm": "x along the dealer's edge, y towards the players; (0,0) at the dealer's left",
            "rotation_deg": "clockwise on the table plane seen from above; 0 = card upright "
                            "(its top towards the dealer, y = 0)",
            "card_corners": "TL, TR, BR, BL of the card face as printed",
            "index_areas_mm": {"width": INDEX_W_MM, "height": INDEX_H_MM,
                               "note": "tl and br corners of the face"},
            "angles": "wheel angles in degrees clockwise from image up",
        },
    }
    write_json(os.path.join(out, "manifest.json"), manifest)
    print("synth: %d decks, %d scenes, %d empty, %d wheel frames in %s (%.1f s, faces %.1f s)"
          % (len(chosen), len(chosen) * a.scenes, a.empty, a.wheel, out,
             time.monotonic() - t_start, t_faces - t_start), file=sys.stderr)


if __name__ == "__main__":
    main()
