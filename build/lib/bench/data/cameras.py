"""Human3.6M camera calibration and the VideoPose3D camera model (numpy, vectorised).

Calibration numbers are the public Human3.6M values that VideoPose3D ships
(``common/h36m_dataset.py``): four cameras with per-camera intrinsics shared by all
subjects, and per-subject extrinsics for S1, S5, S6, S7, S8, S9, S11.

Conventions (VideoPose3D):

* ``orientation`` is a unit quaternion ``(w, x, y, z)`` rotating **camera** coordinates into
  **world** coordinates; ``translation`` is the camera centre in world coordinates, in mm.
* World coordinates have z up; poses are in metres, so the translation is divided by 1000.
* ``project_to_2d`` works in *normalised screen coordinates*: pixels mapped by
  ``x / w * 2 - [1, h / w]`` (x in [-1, 1]); the normalised intrinsic vector is
  ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` with ``f = f_px / w * 2`` and
  ``c = normalize_screen_coordinates(c_px, w, h)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CameraIntrinsics:
    """Intrinsic calibration of one Human3.6M camera (pixels, before normalisation)."""

    id: str
    center: tuple[float, float]  # principal point (cx, cy), pixels
    focal_length: tuple[float, float]  # (fx, fy), pixels
    radial_distortion: tuple[float, float, float]  # k1, k2, k3
    tangential_distortion: tuple[float, float]  # p1, p2
    res_w: int
    res_h: int
    azimuth: float  # only used for visualisation

    def normalized_intrinsic(self) -> FloatArray:
        """VideoPose3D's ``intrinsic`` vector ``(9,)``: ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``.

        Focal length and centre are in normalised screen units (``f / w * 2`` and
        ``c / w * 2 - [1, h / w]``); distortion coefficients are unchanged.
        """
        c = normalize_screen_coordinates(np.asarray(self.center, np.float64), self.res_w, self.res_h)
        f = np.asarray(self.focal_length, np.float64) / self.res_w * 2.0
        return np.concatenate(
            [f, c, np.asarray(self.radial_distortion), np.asarray(self.tangential_distortion)]
        ).astype(np.float64)


@dataclass(frozen=True)
class CameraExtrinsics:
    """Extrinsic calibration of one camera for one subject (VideoPose3D convention)."""

    orientation: tuple[float, float, float, float]  # unit quaternion (w, x, y, z), camera->world
    translation: tuple[float, float, float]  # camera centre in world coordinates, mm

    @property
    def quaternion(self) -> FloatArray:
        """``(4,)`` orientation quaternion ``(w, x, y, z)`` as an array."""
        return np.asarray(self.orientation, np.float64)

    @property
    def translation_m(self) -> FloatArray:
        """``(3,)`` camera centre in world coordinates, metres."""
        return np.asarray(self.translation, np.float64) / 1000.0


#: The four Human3.6M cameras, by camera index 0..3 (the order of every 2D list).
INTRINSICS: tuple[CameraIntrinsics, ...] = (
    CameraIntrinsics(
        id="54138969",
        center=(512.54150390625, 515.4514770507812),
        focal_length=(1145.0494384765625, 1143.7811279296875),
        radial_distortion=(-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
        tangential_distortion=(-0.0009756988729350269, -0.00142447161488235),
        res_w=1000,
        res_h=1002,
        azimuth=70.0,
    ),
    CameraIntrinsics(
        id="55011271",
        center=(508.8486328125, 508.0649108886719),
        focal_length=(1149.6756591796875, 1147.5916748046875),
        radial_distortion=(-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
        tangential_distortion=(-0.0016190266469493508, -0.0027408944442868233),
        res_w=1000,
        res_h=1000,
        azimuth=-70.0,
    ),
    CameraIntrinsics(
        id="58860488",
        center=(519.8158569335938, 501.40264892578125),
        focal_length=(1149.1407470703125, 1148.7989501953125),
        radial_distortion=(-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
        tangential_distortion=(0.0014843869721516967, -0.0007599993259645998),
        res_w=1000,
        res_h=1000,
        azimuth=110.0,
    ),
    CameraIntrinsics(
        id="60457274",
        center=(514.9682006835938, 501.88201904296875),
        focal_length=(1145.5113525390625, 1144.77392578125),
        radial_distortion=(-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
        tangential_distortion=(-0.0005872055771760643, -0.0018133620033040643),
        res_w=1000,
        res_h=1002,
        azimuth=-110.0,
    ),
)

#: Camera id (as in the 2D detection files) -> camera index.
CAMERA_ID_TO_INDEX: Mapping[str, int] = MappingProxyType({cam.id: i for i, cam in enumerate(INTRINSICS)})


def _ext(q: tuple[float, float, float, float], t: tuple[float, float, float]) -> CameraExtrinsics:
    return CameraExtrinsics(orientation=q, translation=t)


#: Per-subject extrinsics, a tuple of 4 (one per camera index). S2-S4 have none.
EXTRINSICS: Mapping[str, tuple[CameraExtrinsics, ...]] = MappingProxyType(
    {
        "S1": (
            _ext(
                (0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
                (1841.1070556640625, 4955.28466796875, 1563.4454345703125),
            ),
            _ext(
                (0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
                (1761.278564453125, -5078.0068359375, 1606.2650146484375),
            ),
            _ext(
                (0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
                (-1846.7777099609375, 5215.04638671875, 1491.972412109375),
            ),
            _ext(
                (0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
                (-1794.7896728515625, -3722.698974609375, 1574.8927001953125),
            ),
        ),
        "S5": (
            _ext(
                (0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
                (2097.3916015625, 4880.94482421875, 1605.732421875),
            ),
            _ext(
                (0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
                (2031.7008056640625, -5167.93310546875, 1612.923095703125),
            ),
            _ext(
                (0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
                (-1620.5948486328125, 5171.65869140625, 1496.43701171875),
            ),
            _ext(
                (0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
                (-1637.1737060546875, -3867.3173828125, 1547.033203125),
            ),
        ),
        "S6": (
            _ext(
                (0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
                (1935.4517822265625, 4950.24560546875, 1618.0838623046875),
            ),
            _ext(
                (0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
                (1969.803955078125, -5128.73876953125, 1632.77880859375),
            ),
            _ext(
                (0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
                (-1769.596435546875, 5185.361328125, 1476.993408203125),
            ),
            _ext(
                (0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
                (-1721.668701171875, -3884.13134765625, 1540.4879150390625),
            ),
        ),
        "S7": (
            _ext(
                (0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
                (1974.512939453125, 4926.3544921875, 1597.8326416015625),
            ),
            _ext(
                (0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
                (1937.0584716796875, -5119.7900390625, 1631.5665283203125),
            ),
            _ext(
                (0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
                (-1741.8111572265625, 5208.24951171875, 1464.8245849609375),
            ),
            _ext(
                (0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
                (-1734.7105712890625, -3832.42138671875, 1548.5830078125),
            ),
        ),
        "S8": (
            _ext(
                (0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
                (2150.65185546875, 4896.1611328125, 1611.9046630859375),
            ),
            _ext(
                (0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
                (2219.965576171875, -5148.453125, 1613.0440673828125),
            ),
            _ext(
                (0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
                (-1571.2215576171875, 5137.0185546875, 1498.1761474609375),
            ),
            _ext(
                (0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
                (-1476.913330078125, -3896.7412109375, 1547.97216796875),
            ),
        ),
        "S9": (
            _ext(
                (0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
                (2044.45849609375, 4935.1171875, 1481.2275390625),
            ),
            _ext(
                (0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
                (1990.959716796875, -5123.810546875, 1568.8048095703125),
            ),
            _ext(
                (0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
                (-1670.9921875, 5211.98583984375, 1528.387939453125),
            ),
            _ext(
                (0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
                (-1696.04345703125, -3827.099853515625, 1591.4127197265625),
            ),
        ),
        "S11": (
            _ext(
                (0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
                (2098.440185546875, 4926.5546875, 1500.278564453125),
            ),
            _ext(
                (0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
                (2083.182373046875, -4912.1728515625, 1561.07861328125),
            ),
            _ext(
                (0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
                (-1609.8153076171875, 5177.3359375, 1537.896728515625),
            ),
            _ext(
                (0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
                (-1590.738037109375, -3854.1689453125, 1578.017578125),
            ),
        ),
    }
)


def qinverse(q: npt.ArrayLike) -> FloatArray:
    """Inverse of unit quaternions ``(..., 4)`` ``(w, x, y, z)``: the conjugate."""
    qa = np.asarray(q, np.float64)
    return np.concatenate([qa[..., :1], -qa[..., 1:]], axis=-1)


def qrot(q: npt.ArrayLike, v: npt.ArrayLike) -> FloatArray:
    """Rotate vectors ``v`` ``(..., 3)`` by unit quaternions ``q`` ``(..., 4)`` (broadcast)."""
    qa = np.asarray(q, np.float64)
    va = np.asarray(v, np.float64)
    qvec = qa[..., 1:]
    uv = np.cross(qvec, va)
    uuv = np.cross(qvec, uv)
    out: FloatArray = va + 2.0 * (qa[..., :1] * uv + uuv)
    return out


def world_to_camera(x: npt.ArrayLike, q: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
    """World -> camera coordinates: ``rotate(inverse(q), X - t)``.

    Args:
        x: world points ``(..., 3)``, metres.
        q: camera->world orientation quaternion ``(4,)`` ``(w, x, y, z)``.
        t: camera centre in world coordinates ``(3,)``, same unit as ``x`` (metres).

    Returns:
        camera-space points ``(..., 3)`` (float64).
    """
    return qrot(qinverse(q), np.asarray(x, np.float64) - np.asarray(t, np.float64))


def camera_to_world(x: npt.ArrayLike, q: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
    """Camera -> world coordinates: ``rotate(q, X) + t`` (inverse of :func:`world_to_camera`)."""
    return qrot(q, x) + np.asarray(t, np.float64)


def project_to_2d(x: npt.ArrayLike, intrinsic: npt.ArrayLike) -> FloatArray:
    """Project camera-space points with Human3.6M's distortion model, as VideoPose3D does.

    ``xx = clamp(X[:2] / X[2], -1, 1)``, ``r2 = |xx|^2``,
    ``radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3``, ``tan = p1 xx.x + p2 xx.y`` (VideoPose3D's
    port of the Human3.6M MATLAB code, *not* Brown-Conrady), ``xd = xx (radial + tan) +
    [p1, p2] r2``, result ``f * xd + c``.

    Args:
        x: camera-space points ``(..., 3)``.
        intrinsic: normalised intrinsic vector(s) ``(..., 9)``
            ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` (see
            :meth:`CameraIntrinsics.normalized_intrinsic`), broadcast against ``x[..., 0]``.

    Returns:
        ``(..., 2)`` normalised screen coordinates (pixel-based intrinsics give pixels).
    """
    xa = np.asarray(x, np.float64)
    k_all = np.asarray(intrinsic, np.float64)
    f = k_all[..., 0:2]
    c = k_all[..., 2:4]
    k = k_all[..., 4:7]
    p = k_all[..., 7:9]
    xx = np.clip(xa[..., :2] / xa[..., 2:3], -1.0, 1.0)  # (..., 2)
    r2 = np.sum(xx**2, axis=-1, keepdims=True)  # (..., 1)
    radial = 1.0 + np.sum(k * np.concatenate([r2, r2**2, r2**3], axis=-1), axis=-1, keepdims=True)
    tan = np.sum(p * xx, axis=-1, keepdims=True)
    xd = xx * (radial + tan) + p * r2
    out: FloatArray = f * xd + c
    return out


def project_to_2d_linear(x: npt.ArrayLike, intrinsic: npt.ArrayLike) -> FloatArray:
    """Pinhole projection without distortion (VideoPose3D ``--linear-projection``): ``f * xx + c``."""
    xa = np.asarray(x, np.float64)
    k_all = np.asarray(intrinsic, np.float64)
    xx = np.clip(xa[..., :2] / xa[..., 2:3], -1.0, 1.0)
    out: FloatArray = k_all[..., 0:2] * xx + k_all[..., 2:4]
    return out


def normalize_screen_coordinates(x: npt.ArrayLike, w: int, h: int) -> FloatArray:
    """Pixels -> normalised screen coordinates: ``x / w * 2 - [1, h / w]`` (x in [-1, 1]).

    Args:
        x: pixel coordinates ``(..., 2)``.
        w: image width in pixels.
        h: image height in pixels.
    """
    xa = np.asarray(x, np.float64)
    if xa.shape[-1] != 2:
        raise ValueError(f"expected (..., 2) coordinates, got {xa.shape}")
    out: FloatArray = xa / w * 2.0 - np.array([1.0, h / w])
    return out


def image_coordinates(x: npt.ArrayLike, w: int, h: int) -> FloatArray:
    """Normalised screen coordinates -> pixels: ``(x + [1, h / w]) * w / 2``."""
    xa = np.asarray(x, np.float64)
    if xa.shape[-1] != 2:
        raise ValueError(f"expected (..., 2) coordinates, got {xa.shape}")
    out: FloatArray = (xa + np.array([1.0, h / w])) * w / 2.0
    return out


def camera_parameters(subject: str, camera: int) -> tuple[CameraIntrinsics, CameraExtrinsics]:
    """Intrinsics and extrinsics of ``camera`` (0..3) for Human3.6M ``subject`` (e.g. ``"S9"``).

    Raises:
        KeyError: the subject has no extrinsics (only S1, S5, S6, S7, S8, S9, S11 do).
    """
    if subject not in EXTRINSICS:
        raise KeyError(f"no Human3.6M camera extrinsics for subject {subject!r}")
    return INTRINSICS[camera], EXTRINSICS[subject][camera]
